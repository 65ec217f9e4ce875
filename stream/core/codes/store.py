"""The store of loaded ICD-10-CM releases: one directory, changed atomically.

`claims-stage codes load` writes it; `check`, `whatif`, `explain`, `code` and the worker
read it at start (the directory is `CLAIMS_CODE_SETS_DIR`, passed in by the command line:
the core reads no settings). Layout:

    code-sets.json                      the manifest: every release, with its provenance
    2026-10-01-1a2b3c4d5e6f.json        one release's codes in a compact form

The manifest names each release's effective date, source file name, the source's sha256,
when it was loaded, its counts, and its compact file with that file's own sha256 (checked
on every read: a damaged store stops the stage instead of judging claims with it).

A change writes the new release file under a temporary name, renames it, then writes the
new manifest under a temporary name and renames it over the old one (`os.replace`, atomic
on POSIX file systems), with an fsync before each rename. Readers only ever see a whole
manifest that names whole files: a crash at any point leaves the old store as it was. Files
no manifest names any longer are removed after the switch. A lock file keeps two loads
from interleaving.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stream.core.codes.releases import LoadedRelease, ReleaseCodes

KnownText = Callable[[str], str | None]
"""A code's description as the stage already knows it (the bundled tables)."""

MANIFEST = "code-sets.json"
LOCK = ".lock"
FORMAT = 1


class StoreError(RuntimeError):
    """The store cannot be read or written as it must be; the message says where and why."""


@dataclass(frozen=True, slots=True)
class StoredRelease:
    """A manifest entry: a release's provenance and counts, without its codes."""

    effective: dt.date
    source: str
    sha256: str
    loaded_at: str
    file: str
    file_sha256: str
    billable: int
    headers: int

    def document(self) -> dict[str, Any]:
        return {
            "effective": self.effective.isoformat(),
            "source": self.source,
            "sha256": self.sha256,
            "loaded_at": self.loaded_at,
            "file": self.file,
            "file_sha256": self.file_sha256,
            "billable": self.billable,
            "headers": self.headers,
        }

    @classmethod
    def from_document(cls, document: Any, where: str) -> StoredRelease:
        try:
            return cls(
                effective=dt.date.fromisoformat(document["effective"]),
                source=str(document["source"]),
                sha256=str(document["sha256"]),
                loaded_at=str(document["loaded_at"]),
                file=str(document["file"]),
                file_sha256=str(document["file_sha256"]),
                billable=int(document["billable"]),
                headers=int(document["headers"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StoreError(
                f"{where}: a release entry is not as the store writes it ({error})"
            ) from error


def _compact(codes: ReleaseCodes) -> bytes:
    """A release's codes as the store keeps them: read back in a few tens of milliseconds."""
    return orjson.dumps(
        {
            "format": FORMAT,
            "billable": sorted(codes.billable),
            "headers": sorted(codes.headers),
            "descriptions": dict(codes.descriptions),
            "lines": codes.lines,
            "last_code": codes.last_code,
        }
    )


def _from_compact(data: bytes, where: str, known: KnownText | None) -> ReleaseCodes:
    try:
        document = orjson.loads(data)
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, expected {FORMAT}")
        descriptions: dict[str, str] = document["descriptions"]
        if known is not None:
            descriptions = {c: t for c, t in descriptions.items() if t != known(c)}
        return ReleaseCodes(
            billable=frozenset(document["billable"]),
            headers=frozenset(document["headers"]),
            descriptions=descriptions,
            lines=int(document["lines"]),
            last_code=str(document["last_code"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise StoreError(f"{where} is not a release file this stage reads: {error}") from error


class CodeSetStore:
    """The loaded releases in one directory. Reading never writes; writing is atomic."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def entries(self) -> list[StoredRelease]:
        """The manifest's releases by effective date; none for a store never written."""
        path = self.manifest_path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise StoreError(f"cannot read {path}: {error.strerror}") from error
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise StoreError(f"{path} is not JSON: {error}") from error
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise StoreError(f"{path} is not a code-set manifest of format {FORMAT}")
        entries = [StoredRelease.from_document(d, str(path)) for d in document["releases"]]
        return sorted(entries, key=lambda entry: entry.effective)

    def releases(self, known: KnownText | None = None) -> tuple[LoadedRelease, ...]:
        """Every loaded release with its codes, each file checked against its sha256.

        With `known` (a code's description in the bundled tables), a release keeps only the
        descriptions that differ from it: the same text need not be held twice, and most
        of a release's texts are the bundled ones (some 30 MB a release in memory).
        """
        try:
            return tuple(self._read(entry, known) for entry in self.entries())
        except FileNotFoundError:
            pass  # a load switched the manifest between our two reads: read the new one
        try:
            return tuple(self._read(entry, known) for entry in self.entries())
        except FileNotFoundError as error:
            raise StoreError(
                f"cannot read {error.filename}: the manifest names a file the store lacks"
            ) from error

    def _read(self, entry: StoredRelease, known: KnownText | None) -> LoadedRelease:
        path = self.directory / entry.file
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as error:
            raise StoreError(f"cannot read {path}: {error.strerror}") from error
        if hashlib.sha256(data).hexdigest() != entry.file_sha256:
            raise StoreError(
                f"{path} does not match the sha256 the manifest records: the store is damaged; "
                "load the release again"
            )
        return LoadedRelease(
            effective=entry.effective,
            source=entry.source,
            sha256=entry.sha256,
            loaded_at=entry.loaded_at,
            codes=_from_compact(data, str(path), known),
        )

    # --- changes -----------------------------------------------------------------------

    def add(self, release: LoadedRelease) -> StoredRelease | None:
        """Store a release; it replaces one with the same effective date, which is returned."""
        with self._locked():
            entries = self.entries()
            data = _compact(release.codes)
            name = f"{release.effective}-{release.sha256[:12]}.json"
            self._write(name, data)
            entry = StoredRelease(
                effective=release.effective,
                source=release.source,
                sha256=release.sha256,
                loaded_at=release.loaded_at,
                file=name,
                file_sha256=hashlib.sha256(data).hexdigest(),
                billable=len(release.codes.billable),
                headers=len(release.codes.headers),
            )
            replaced = next((e for e in entries if e.effective == release.effective), None)
            kept = [e for e in entries if e.effective != release.effective]
            self._switch([*kept, entry])
            return replaced

    def remove(self, effective: dt.date) -> StoredRelease | None:
        """Take the release of that date out of the store; None when there is none."""
        with self._locked():
            entries = self.entries()
            removed = next((e for e in entries if e.effective == effective), None)
            if removed is not None:
                self._switch([e for e in entries if e is not removed])
            return removed

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl  # POSIX: only a writer needs it

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = (self.directory / LOCK).open("a")
        except OSError as error:
            raise StoreError(f"cannot write to {self.directory}: {error.strerror}") from error
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _write(self, name: str, data: bytes) -> None:
        """Write a file whole under a temporary name, then rename it into place."""
        descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                # readable by the worker's user, whoever loaded it (mkstemp makes it 0600)
                os.fchmod(handle.fileno(), 0o644)
                os.fsync(handle.fileno())
            os.replace(temporary, self.directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self._sync_directory()

    def _switch(self, entries: list[StoredRelease]) -> None:
        """Make `entries` the store: one rename of the manifest, then remove what it no longer names."""
        entries = sorted(entries, key=lambda entry: entry.effective)
        document = {"format": FORMAT, "releases": [e.document() for e in entries]}
        self._write(MANIFEST, orjson.dumps(document, option=orjson.OPT_INDENT_2))
        named = {e.file for e in entries} | {MANIFEST, LOCK}
        for path in self.directory.iterdir():
            if path.name not in named and (path.suffix == ".json" or path.name.startswith(".tmp-")):
                with contextlib.suppress(OSError):
                    path.unlink()

    def _sync_directory(self) -> None:
        """Make the renames durable: a crash after this keeps them."""
        try:
            descriptor = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(descriptor)
        except OSError:
            pass
        finally:
            os.close(descriptor)
