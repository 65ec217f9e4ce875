"""ICD-10-CM releases as CMS publishes them, read as data.

CMS publishes every ICD-10-CM release (each October 1, some April 1s) as public-domain
files; the one a claim editor needs is "Code Descriptions in Tabular Order", a zip that
holds the *order file* (`icd10cm_order_2027.txt`). This module reads that file (or the zip
around it), checks it whole before anything uses it, and infers the date the release
takes effect from CMS's file names where they say it unambiguously.

The order file is fixed-width, one code or header a line (columns counted from 1):

    1-5    order number, zero filled
    7-13   the code without its dot, left justified
    15     `0` a header, `1` a code valid for HIPAA-covered transactions (billable)
    17-76  short description
    78-    long description

Columns 6, 14, 16 and 77 are blank. A release read here (`ReleaseCodes`) is what the store
keeps (`stream.core.codes.store`) and what the code calendar judges claims by.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

from stream.core.codes.mce_master import dotted

MAX_ORDER_FILE_BYTES = 64 * 2**20
"""The largest order file read (the FY2026 file is about 14 MB): a bound, not a guess."""

DOTLESS_CODE = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")
"""An ICD-10-CM code as the order file writes it: without its dot."""

LONG_DESCRIPTION_COLUMN = 78
"""The first column of the long description: every line reaches it."""


class ReleaseFormatError(ValueError):
    """The file is not a CMS ICD-10-CM order file; the message names the line when one is
    at fault."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line:,}: {message}" if line is not None else message)


@dataclass(frozen=True, slots=True, eq=False)
class ReleaseCodes:
    """The codes of one release: which are billable, which are headers, and their long
    descriptions. Codes are dotted (`C79.83`), as the stage writes them."""

    billable: frozenset[str]
    headers: frozenset[str]
    descriptions: Mapping[str, str]
    """Long descriptions by code. Read from the store for the stage, only those that differ
    from the bundled tables' (`CodeSetStore.releases(known=...)`): a code without one here
    has the bundled text as its own."""
    lines: int
    """The number of the order file's last line."""
    last_code: str
    """The code on that line."""

    @property
    def size(self) -> int:
        return len(self.billable) + len(self.headers)


@dataclass(frozen=True, slots=True, eq=False)
class LoadedRelease:
    """A release an operator loaded: its codes, the date it takes effect, and where it came
    from. Compared by identity: two loads of one file are two loads."""

    effective: dt.date
    source: str
    """The file it was read from, as given (`icd10cm_order_2027.txt`; a zip's member after
    the zip: `2027-code-descriptions-tabular-order.zip:icd10cm_order_2027.txt`)."""
    sha256: str
    """Of the order file's bytes (the member's, for a zip)."""
    loaded_at: str
    """When it was stored (ISO 8601, UTC)."""
    codes: ReleaseCodes

    @property
    def tag(self) -> str:
        """`loaded 2026-10-01 sha256:1a2b3c4d5e6f`: what decisions record of it."""
        return f"loaded {self.effective} sha256:{self.sha256[:12]}"


def _decode(data: bytes) -> str:
    """UTF-8 (ASCII in practice), or Windows-1252 as older CMS files were written."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ReleaseFormatError(
            f"byte 0x{data[error.start]:02x} is neither UTF-8 nor Windows-1252 text", line
        ) from None


def _parse_line(line: str, number: int) -> tuple[int, str, bool, str]:
    """Order number, dotless code, billable flag and long description of one line."""
    if len(line) < LONG_DESCRIPTION_COLUMN:
        raise ReleaseFormatError(
            f"{len(line)} characters; an order-file line carries its long description from "
            f"column {LONG_DESCRIPTION_COLUMN} (a truncated line?)",
            number,
        )
    order, code, flag = line[0:5], line[6:13].rstrip(), line[14]
    if not (order.isascii() and order.isdigit()):
        raise ReleaseFormatError(
            f"columns 1-5 {order!r} are not a zero-filled order number", number
        )
    if line[5] != " " or line[13] != " " or line[15] != " " or line[76] != " ":
        raise ReleaseFormatError("columns 6, 14, 16 and 77 must be blank", number)
    if not DOTLESS_CODE.fullmatch(code):
        raise ReleaseFormatError(
            f"columns 7-13 {line[6:13]!r} are not an ICD-10-CM code without its dot", number
        )
    if flag not in "01":
        raise ReleaseFormatError(f"column 15 {flag!r} is neither 0 (header) nor 1 (valid)", number)
    long = line[77:].strip()
    if not line[16:76].strip() or not long:
        raise ReleaseFormatError(f"{dotted(code)} has no short or no long description", number)
    return int(order), code, flag == "1", long


def parse_order_file(data: bytes) -> ReleaseCodes:
    """Read and check a whole order file; raises `ReleaseFormatError` naming the line.

    Checked: every line parses; order numbers increase; no code twice; each header has a
    billable code below it, and no billable code has one.
    """
    if len(data) > MAX_ORDER_FILE_BYTES:
        raise ReleaseFormatError(
            f"{len(data):,} bytes, more than the {MAX_ORDER_FILE_BYTES:,} an order file can be"
        )
    lines = _decode(data).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()  # the final line break, and blank lines after the last code
    billable: set[str] = set()
    headers: set[str] = set()
    descriptions: dict[str, str] = {}
    line_of: dict[str, int] = {}
    previous = 0
    for number, raw in enumerate(lines, start=1):
        order, code, valid, long = _parse_line(raw.removesuffix("\r"), number)
        if order <= previous:
            raise ReleaseFormatError(f"order number {order} does not follow {previous}", number)
        if code in line_of:
            raise ReleaseFormatError(
                f"{dotted(code)} is listed again (first on line {line_of[code]:,})", number
            )
        previous = order
        line_of[code] = number
        (billable if valid else headers).add(code)
        descriptions[dotted(code)] = long
    if not billable:
        raise ReleaseFormatError("no code valid for transactions: not an order file")
    _check_hierarchy(billable, headers, line_of)
    return ReleaseCodes(
        billable=frozenset(map(dotted, billable)),
        headers=frozenset(map(dotted, headers)),
        descriptions=descriptions,
        lines=len(lines),
        last_code=dotted(lines[-1][6:13].rstrip()),
    )


def _check_hierarchy(billable: set[str], headers: set[str], line_of: Mapping[str, int]) -> None:
    """Headers have a billable code below them; billable codes have nothing below them."""
    above: set[str] = set()
    for code in billable:
        above.update(code[:width] for width in range(3, len(code)))
    for code in sorted(headers - above, key=line_of.__getitem__)[:1]:
        raise ReleaseFormatError(
            f"{dotted(code)} is a header (0) with no valid code below it", line_of[code]
        )
    for code in sorted(billable & above, key=line_of.__getitem__)[:1]:
        raise ReleaseFormatError(
            f"{dotted(code)} is marked valid (1) but has codes below it", line_of[code]
        )


# --- the file an operator gives --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFile:
    """The bytes of an order file and the names it came under."""

    data: bytes
    source: str
    """The file name as given; a zip's member after the zip's name and a colon."""
    names: tuple[str, ...]
    """The file names that can date the release (the zip's and its member's)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


_ORDER_MEMBER = re.compile(r"order.*\.txt$", re.IGNORECASE)


def read_order_file(path: Path) -> OrderFile:
    """The order file at `path`, or inside the zip at `path` (CMS ships it in one)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
            handle.seek(0, io.SEEK_END)
            size = handle.tell()
            if head.startswith(b"PK"):
                return _from_zip(path)
            if size > MAX_ORDER_FILE_BYTES:
                raise ReleaseFormatError(
                    f"{path.name} is {size:,} bytes, too large for an order file"
                )
            handle.seek(0)
            data = handle.read()
    except OSError as error:
        raise ReleaseFormatError(f"cannot read {path}: {error.strerror}") from error
    return OrderFile(data, path.name, (path.name,))


def _from_zip(path: Path) -> OrderFile:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir() and _ORDER_MEMBER.search(PurePath(info.filename).name)
            ]
            if len(members) != 1:
                found = ", ".join(i.filename for i in members) or "none"
                raise ReleaseFormatError(
                    f"{path.name} must hold exactly one order file (*order*.txt); it holds {found}"
                )
            (member,) = members
            if member.file_size > MAX_ORDER_FILE_BYTES:
                raise ReleaseFormatError(
                    f"{member.filename} is {member.file_size:,} bytes, too large for an order file"
                )
            data = archive.read(member)  # checks the member's CRC: a damaged zip stops here
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError) as error:
        if isinstance(error, ReleaseFormatError):
            raise
        raise ReleaseFormatError(f"{path.name} is not a readable zip: {error}") from error
    name = PurePath(member.filename).name
    return OrderFile(data, f"{path.name}:{name}", (path.name, name))


# --- the date a release takes effect ----------------------------------------------------------

_MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august",
    "september", "october", "november", "december",
)  # fmt: skip
_YEAR = re.compile(r"(?<![0-9])(20[0-9]{2})(?![0-9])")
_RELEASE_WORDS = ("order", "tabular", "code-descriptions", "code_descriptions")


class _AmbiguousError(Exception):
    pass


def _date_in(name: str) -> dt.date | None:
    """The date one CMS file name gives; None if it gives none; `_AmbiguousError` if it could
    mean more than one."""
    text = PurePath(name).name.lower()
    years = {int(y) for y in _YEAR.findall(text)}
    words = set(re.findall(r"[a-z]+", text))
    months = {m for m in _MONTHS if m in words or (m[:3] in words and m != "may")}
    if not years or not any(w in text for w in _RELEASE_WORDS):
        return None
    if len(years) > 1 or len(months) > 1 or months - {"april"}:
        raise _AmbiguousError
    (year,) = years
    if months:  # an April update: in force from April 1 of the year it names
        return dt.date(year, 4, 1)
    return dt.date(year - 1, 10, 1)  # a fiscal-year release: from October 1 of the year before


def effective_date_from_names(names: tuple[str, ...]) -> dt.date | None:
    """The date a release takes effect, as CMS's file names say it: `icd10cm_order_2027.txt`
    is FY2027 (2026-10-01), a name with April and 2027 is the update of 2027-04-01. None
    when the names say nothing, or could mean more than one date."""
    found: set[dt.date] = set()
    try:
        for name in names:
            day = _date_in(name)
            if day is not None:
                found.add(day)
    except _AmbiguousError:
        return None
    return found.pop() if len(found) == 1 else None
