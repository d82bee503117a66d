"""The evidence rule: the model's call and the nearest reference together give one call and a tier.

The server implements the same rule (docs/model-artifact.md, "Reference set and evidence").

Inputs per protein: the model's call (is_arg, predicted class) and the nearest-reference hit, or
none. Only a hit with ``evalue <= max_evalue`` counts as a hit at all. Then:

- tier ``reference`` when the hit has ``identity >= reference_min_identity`` and
  ``reference_coverage >= reference_min_coverage``: the class is the hit's class, whatever the
  model said (an ARG, unless the reference is one of the set's known non-ARGs);
- otherwise, when the model calls an ARG: tier ``model`` if there is a hit, ``novel`` if there is
  none; the class is the model's class;
- otherwise (the model says non-ARG): tier ``model``, the class is the non-ARG class.

The "reference only" call (for evaluation) is the hit's class when there is a hit, else non-ARG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .metrics import binary_detection, classification_report

TIER_REFERENCE = "reference"
TIER_MODEL = "model"
TIER_NOVEL = "novel"


@dataclass(frozen=True)
class Thresholds:
    reference_min_identity: float = 0.8
    reference_min_coverage: float = 0.6
    max_evalue: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("reference_min_identity", "reference_min_coverage"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {v}")
        if not (self.max_evalue >= 0.0 and math.isfinite(self.max_evalue)):
            raise ValueError(f"max_evalue must be a finite number >= 0, got {self.max_evalue}")

    def to_json(self) -> dict:
        return {"reference_min_identity": self.reference_min_identity,
                "reference_min_coverage": self.reference_min_coverage,
                "max_evalue": self.max_evalue}

    @classmethod
    def from_json(cls, d: dict) -> Thresholds:
        return cls(float(d["reference_min_identity"]), float(d["reference_min_coverage"]),
                   float(d["max_evalue"]))


@dataclass(frozen=True)
class Hit:
    """The nearest reference of one query; identity and coverages are fractions (0..1)."""
    reference_id: str
    gene: str
    accession: str
    label: str                  # the reference's class
    identity: float             # identical columns / alignment columns (gaps included)
    query_coverage: float       # fraction of the query spanned by the local alignment
    reference_coverage: float   # fraction of the reference spanned
    score: float                # raw Smith-Waterman score
    bits: float
    evalue: float


@dataclass(frozen=True)
class Call:
    tier: str
    is_arg: bool
    label: str                  # the predicted class
    hit: Hit | None             # the hit that counted (after the e-value filter)


def counted(hit: Hit | None, t: Thresholds) -> Hit | None:
    """The hit if it passes the e-value filter, else None."""
    return hit if hit is not None and hit.evalue <= t.max_evalue else None


def is_reference_match(hit: Hit | None, t: Thresholds) -> bool:
    h = counted(hit, t)
    return (h is not None and h.identity >= t.reference_min_identity
            and h.reference_coverage >= t.reference_min_coverage)


def combine(model_is_arg: bool, model_label: str, hit: Hit | None, t: Thresholds,
            nonarg_class: str) -> Call:
    """The call and tier of one protein (the rule in the module docstring)."""
    h = counted(hit, t)
    if h is not None and is_reference_match(h, t):
        return Call(TIER_REFERENCE, h.label != nonarg_class, h.label, h)
    if model_is_arg:
        return Call(TIER_MODEL if h is not None else TIER_NOVEL, True, model_label, h)
    return Call(TIER_MODEL, False, nonarg_class, h)


def reference_only(hit: Hit | None, t: Thresholds, nonarg_class: str) -> str:
    """The class the nearest reference alone gives: its class when there is a hit, else non-ARG."""
    h = counted(hit, t)
    return h.label if h is not None else nonarg_class


# Identity thresholds the rule is chosen from (0: any hit within the E-value limit decides); finer
# where distant homologs and the housekeeping relatives of ARGs meet.
IDENTITY_GRID = (0.0, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class RuleScore:
    reference_min_identity: float
    macro_f1: float
    accuracy: float
    false_positive_rate: float  # share of the non-ARGs the combined call calls an ARG


def score_rules(y_true: Sequence[str], model_labels: Sequence[str], hits: Sequence[Hit | None],
                classes: Sequence[str], nonarg_class: str, reference_min_coverage: float,
                max_evalue: float, grid: Sequence[float] = IDENTITY_GRID) -> list[RuleScore]:
    """The combined call's macro-F1, accuracy and false-positive rate for each identity threshold."""
    rows = []
    for identity in grid:
        rule = Thresholds(identity, reference_min_coverage, max_evalue)
        calls = [combine(y != nonarg_class, y, h, rule, nonarg_class).label
                 for y, h in zip(model_labels, hits)]
        report = classification_report(list(y_true), calls, list(classes), nonarg_class)
        b = binary_detection(y_true, calls, nonarg_class)
        fpr = b["fp"] / (b["fp"] + b["tn"]) if b["fp"] + b["tn"] else 0.0
        rows.append(RuleScore(identity, report["macro_f1"], report["accuracy"], fpr))
    return rows


def choose_rule(rows: Sequence[RuleScore], max_false_positive_rate: float) -> RuleScore:
    """The best macro-F1 (ties: the higher identity) among thresholds that keep the false-positive
    rate within the bound; when none does, the one with the fewest false positives."""
    if not rows:
        raise ValueError("no thresholds to choose from")
    within = [r for r in rows if r.false_positive_rate <= max_false_positive_rate]
    if within:
        return max(within, key=lambda r: (r.macro_f1, r.reference_min_identity))
    return min(rows, key=lambda r: (r.false_positive_rate, -r.macro_f1))
