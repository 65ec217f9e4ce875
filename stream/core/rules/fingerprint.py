"""The catalogue's fingerprint: what the ruleset version stands for.

`RULESET_VERSION` (`stream.core.rules.ruleset`) names the rules a decision was judged by. It
is not remembered by hand: `make regen` computes the fingerprint of the catalogue, and when
it differs from the one the version was given for, writes the next version
(`2026.12.0` -> `2026.12.1`) with the new fingerprint; a test fails while they disagree.

The fingerprint is a SHA-256 over the code of every module of the rules package that takes
part in a decision (every module but `NOT_DECIDING`), read as Python tokens without comments,
docstrings, blank lines or layout: a rule's check, metadata or code sets, the code lists, the
policy machinery. Documentation and formatting changes keep the version; a changed message
or condition gives a new one. The code sets and reference tables the stage loads are
versioned apart (`code_sets` in each decision, `icd10cm` on the worker).
"""

from __future__ import annotations

import ast
import hashlib
import io
import re
import tokenize
from collections.abc import Iterator
from importlib import resources

RULES_PACKAGE = "stream.core.rules"

NOT_DECIDING = frozenset(
    {
        "casebook.py",  # the rules' cases: test data
        "documentation.py",  # how a docstring reads as documentation
        "fingerprint.py",  # this module
        "ruleset.py",  # the version itself
        "tomllines.py",  # line numbers for a policy file's error messages
    }
)

_LAYOUT = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER, tokenize.TYPE_COMMENT}
)
_FSTRING_START: int | None = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END: int | None = getattr(tokenize, "FSTRING_END", None)
_VERSION = re.compile(r"(.*\.)(\d+)")


def deciding_modules() -> dict[str, str]:
    """The source of each module of the rules package that takes part in a decision, by name."""
    folder = resources.files(RULES_PACKAGE)
    return {
        entry.name: entry.read_text("utf-8")
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(".py") and entry.name not in NOT_DECIDING
    }


def catalogue_fingerprint(modules: dict[str, str] | None = None) -> str:
    """`sha256:<hex>` of the deciding modules' tokens (`deciding_modules()` unless given)."""
    digest = hashlib.sha256()
    for name, source in sorted((modules or deciding_modules()).items()):
        digest.update(f"# {name}\n".encode())
        for word in deciding_tokens(source):
            digest.update(word.encode())
            digest.update(b"\x00")
    return f"sha256:{digest.hexdigest()}"


def deciding_tokens(source: str) -> Iterator[str]:
    """The module's tokens without comments, docstrings, blank lines or indentation widths.

    An f-string is one token whatever the Python version (3.12 splits it into parts)."""
    docstrings = _docstring_positions(source)
    lines = source.splitlines(keepends=True)
    depth, opened = 0, (0, 0)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == _FSTRING_START:
            depth, opened = depth + 1, (token.start if depth == 0 else opened)
        elif token.type == _FSTRING_END:
            depth -= 1
            if depth == 0:
                yield _text_between(lines, opened, token.end)
        elif depth or token.type in _LAYOUT or token.start in docstrings:
            continue
        elif token.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE):
            yield tokenize.tok_name[token.type]
        else:
            yield token.string


def next_version(version: str) -> str:
    """The version after `version`: its last number plus one (`2026.12.0` -> `2026.12.1`)."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"a ruleset version ends in a number, not {version!r}")
    return f"{match[1]}{int(match[2]) + 1}"


def _docstring_positions(source: str) -> set[tuple[int, int]]:
    """Where each docstring (module, class, function) starts: (line, column)."""
    positions = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                positions.add((first.value.lineno, first.value.col_offset))
    return positions


def _text_between(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    """The source from (line, column) to (line, column), lines counted from 1."""
    (first, column), (last, end_column) = start, end
    if first == last:
        return lines[first - 1][column:end_column]
    middle = "".join(lines[first : last - 1])
    return lines[first - 1][column:] + middle + lines[last - 1][:end_column]
