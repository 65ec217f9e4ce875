"""One test session's reference data, shared by the tests and by every command they run.

Loading ICD-10-CM takes about two seconds; a Decider over already loaded catalogues takes
a millisecond. The commands get theirs through `ReferenceData`, the app's context object.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import typer
from typer.testing import CliRunner, Result

from stream.cli.common import ReferenceData
from stream.core.codes.cpt import CptCatalog
from stream.core.codes.icd10cm import Icd10cmCatalog
from stream.core.codes.releases import LoadedRelease
from stream.core.contracts import MAX_RECORD_BYTES
from stream.core.decision import Decider
from stream.core.rules.config import Policies


@functools.cache
def session_decider() -> Decider:
    return Decider()


class SessionReferenceData(ReferenceData):
    """The session's catalogues, under whatever policies a command loads."""

    def decider(
        self,
        policies: Policies,
        max_record_bytes: int = MAX_RECORD_BYTES,
        releases: Sequence[LoadedRelease] = (),
    ) -> Decider:
        if releases:  # loaded code sets: catalogues of their own
            return super().decider(policies, max_record_bytes, releases)
        loaded = session_decider()
        return Decider(
            policies, icd10cm=loaded.icd10cm, cpt=loaded.cpt, max_record_bytes=max_record_bytes
        )

    def catalogs(self, releases: Sequence[LoadedRelease] = ()) -> tuple[Icd10cmCatalog, CptCatalog]:
        if releases:
            return super().catalogs(releases)
        loaded = session_decider()
        return loaded.icd10cm, loaded.cpt


class StageRunner(CliRunner):
    """Runs commands in this process, on the session's reference data."""

    def invoke(
        self,
        app: typer.Typer,
        args: str | Sequence[str] | None = None,
        input: bytes | str | None = None,
        env: Mapping[str, str | None] | None = None,
        catch_exceptions: bool = True,
        color: bool = False,
        **extra: Any,
    ) -> Result:
        extra.setdefault("obj", SessionReferenceData())
        return super().invoke(app, args, input, env, catch_exceptions, color, **extra)
