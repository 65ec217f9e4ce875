"""The metastatic-coding rule catalogue: one registry, in ID order.

Every listing of rules (the README table, `claims-stage rules`, `claims-stage explain`)
is generated from `CATALOGUE`.
"""

from __future__ import annotations

from stream.core.rules import (
    code_validity,
    conflicts,
    haematology,
    history,
    manifestations,
    primary_and_secondary,
    procedures,
    sequencing,
    specificity,
    therapy_encounters,
)
from stream.core.rules.base import Hit, Rule

RULESET_VERSION = "2026.12.1"
"""The catalogue's version; a rules configuration that changes anything adds a suffix."""

CATALOGUE: tuple[Rule, ...] = (
    code_validity.met001_valid_code,
    code_validity.met002_billable_code,
    code_validity.met003_active_procedure,
    code_validity.met004_add_on_needs_primary,
    primary_and_secondary.met005_secondary_needs_primary,
    primary_and_secondary.met006_neuroendocrine_secondaries,
    primary_and_secondary.met007_unknown_primary_beside_known,
    primary_and_secondary.met008_unknown_primary_and_unknown_secondary,
    primary_and_secondary.met009_disseminated_with_known_sites,
    history.met010_history_and_active_same_site,
    history.met011_primary_status_agrees,
    history.met012_follow_up_with_disease,
    sequencing.met013_secondary_treatment_sequencing,
    sequencing.met014_primary_treatment_sequencing,
    therapy_encounters.met015_therapy_encounter,
    history.met016_history_not_first,
    manifestations.met017_manifestation_codes,
    sequencing.met018_symptom_first,
    manifestations.met019_pathological_fracture_needs_neoplasm,
    therapy_encounters.met020_palliative_care,
    manifestations.met021_neoplasm_pain,
    manifestations.met022_cancer_cachexia,
    haematology.met023_lymphoma_nodes,
    haematology.met024_lymphoma_organs,
    specificity.met025_laterality,
    specificity.met026_overlapping_subsites,
    specificity.met027_uncertain_metastasis,
    specificity.met028_m1_without_distant_code,
    specificity.met029_tnm_consistency,
    procedures.met030_craniotomy_diagnosis,
    procedures.met031_pet_needs_cancer,
    procedures.met032_procedure_support,
    conflicts.met033_sex_conflict,
    sequencing.met034_transplanted_organ,
    therapy_encounters.met035_brachytherapy,
    haematology.met036_remission_conflict,
    history.met037_recurrence_coded_as_secondary,
    conflicts.met038_serosal_effusion,
    conflicts.met039_fracture_nos_with_bone_neoplasm,
    haematology.met040_myeloma_bone_secondary,
    primary_and_secondary.met041_unspecified_secondary_beside_specified,
    code_validity.met042_code_set_date,
)

RULES_BY_ID: dict[str, Rule] = {r.rule_id: r for r in CATALOGUE}

RULE_ID_RANGE = f"{CATALOGUE[0].rule_id}..{CATALOGUE[-1].rule_id}"
"""`MET-001..MET-0nn`, for messages and documents: derived, never typed."""

__all__ = ["CATALOGUE", "RULESET_VERSION", "RULES_BY_ID", "RULE_ID_RANGE", "Hit", "Rule"]
