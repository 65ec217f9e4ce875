"""Where each table and key of a TOML document sits: its line number, for error messages.

`tomllib` gives values without positions. A policy file is small and simple (tables of
scalar keys), so a line scan recovers where every table header, dotted key and inline-table
key is written; an error then names the line a person has to fix. A construct the scan does
not follow (a multi-line array, say) only makes the named line less precise: the line of the
nearest enclosing table or key that the scan did see.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

KeyPath = tuple[str, ...]


def key_lines(text: str) -> dict[KeyPath, int]:
    """Every table and key path written in `text`, with the 1-based line of its first mention."""
    scan = _Scan()
    for number, raw in enumerate(text.splitlines(), start=1):
        scan.line(number, raw)
    return scan.lines


class _Scan:
    """The state of a line scan: the table the lines are in, and an open multi-line string."""

    def __init__(self) -> None:
        self.lines: dict[KeyPath, int] = {}
        self.table: KeyPath = ()
        self.in_multiline: str | None = None

    def line(self, number: int, raw: str) -> None:
        if self.in_multiline is not None:  # inside a multi-line string value: no keys here
            if raw.count(self.in_multiline) % 2 == 1:
                self.in_multiline = None
            return
        line = _without_comment(raw).strip()
        if line.startswith("["):
            self.table = tuple(split_key(line.strip("[]").strip()))
            _note(self.lines, self.table, number)
            return
        key, sep, value = _split_assignment(line)
        if not sep:
            return
        path = self.table + tuple(split_key(key))
        _note(self.lines, path, number)
        value = value.strip()
        if value.startswith("{"):
            for inner in _inline_keys(value):
                _note(self.lines, path + inner, number)
        for quote in ('"""', "'''"):
            if value.count(quote) % 2 == 1:
                self.in_multiline = quote


def line_of(lines: dict[KeyPath, int], loc: Sequence[str | int]) -> int | None:
    """The line of `loc` or, when it is not written as such, of its nearest written parent."""
    path = tuple(str(part) for part in loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def split_key(key: str) -> Iterator[str]:
    """`payers."BCBS IL".rules.MET-025` -> payers, BCBS IL, rules, MET-025."""
    part: list[str] = []
    quote: str | None = None
    for char in key:
        if quote:
            if char == quote:
                quote = None
            else:
                part.append(char)
        elif char in "\"'":
            quote = char
        elif char == ".":
            yield "".join(part).strip()
            part = []
        else:
            part.append(char)
    yield "".join(part).strip()


def _note(lines: dict[KeyPath, int], path: KeyPath, number: int) -> None:
    for end in range(1, len(path) + 1):  # a dotted key also writes its parent tables
        lines.setdefault(path[:end], number)


def _outside_quotes(text: str) -> Iterator[tuple[int, str]]:
    """(index, character) of the characters of `text` that are not inside a string."""
    quote: str | None = None
    escaped = False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
            continue
        yield index, char


def _without_comment(line: str) -> str:
    for index, char in _outside_quotes(line):
        if char == "#":
            return line[:index]
    return line


def _split_assignment(line: str) -> tuple[str, str, str]:
    for index, char in _outside_quotes(line):
        if char == "=":
            return line[:index], "=", line[index + 1 :]
    return line, "", ""


def _inline_keys(value: str) -> Iterator[KeyPath]:
    """Keys of an inline table `{enabled = false, severity = "x"}` (one level deep)."""
    inner = value.strip()[1:]
    start = 0
    depth = 0
    pieces: list[str] = []
    for index, char in _outside_quotes(inner):
        if char in "{[":
            depth += 1
        elif char in "}]":
            if depth == 0:
                pieces.append(inner[start:index])
                break
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(inner[start:index])
            start = index + 1
    for piece in pieces:
        key, sep, _ = _split_assignment(piece)
        if sep:
            yield tuple(split_key(key.strip()))
