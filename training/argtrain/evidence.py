"""The evidence rule: the model's call and the nearest reference together give one call and a tier.

The server implements the same rule (docs/evidence.md, "The tier and the final call").

Inputs per protein: the model's call (is_arg, predicted class), its P(ARG), and the
nearest-reference hit, or none. Only a hit with ``evalue <= max_evalue`` counts as a hit at all.
Then, in this order:

- tier ``reference`` when the hit has ``identity >= reference_min_identity`` and
  ``reference_coverage >= reference_min_coverage``: the class is the hit's class, whatever the
  model said (an ARG, unless the reference is one of the set's known non-ARGs);
- tier ``homolog`` when the rule has ``homolog_min_arg_probability``, the nearest ARG reference
  (the hit, or its ``nearest_arg`` when the hit is a known non-ARG) has the coverage above, and
  the model's P(ARG) reaches that value — behind a known non-ARG also ``novel_min_arg_probability``
  when the rule has it: a distant homolog the model supports; the class is that reference's class;
- when the model calls an ARG and no ARG reference is nearest (no hit, or a known non-ARG below
  the identity threshold): tier ``novel`` if P(ARG) reaches ``novel_min_arg_probability`` (when
  the rule has it), else tier ``model`` and not an ARG;
- otherwise the model's call, tier ``model``.

The "reference only" call (for evaluation) is the hit's class when there is a hit, else non-ARG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .metrics import binary_detection, classification_report
from .references import clean_residues

TIER_REFERENCE = "reference"
TIER_HOMOLOG = "homolog"
TIER_MODEL = "model"
TIER_NOVEL = "novel"


@dataclass(frozen=True)
class Thresholds:
    reference_min_identity: float = 0.8
    reference_min_coverage: float = 0.6
    max_evalue: float = 1e-5
    # None: no homolog tier (only the identity threshold lets a reference decide).
    homolog_min_arg_probability: float | None = None
    # None: the model's own ARG threshold is enough without any reference.
    novel_min_arg_probability: float | None = None

    def __post_init__(self) -> None:
        for name in ("reference_min_identity", "reference_min_coverage",
                     "homolog_min_arg_probability", "novel_min_arg_probability"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a fraction in [0, 1], got {v}")
        if not (self.max_evalue >= 0.0 and math.isfinite(self.max_evalue)):
            raise ValueError(f"max_evalue must be a finite number >= 0, got {self.max_evalue}")

    def to_json(self) -> dict:
        d = {"reference_min_identity": self.reference_min_identity,
             "reference_min_coverage": self.reference_min_coverage,
             "max_evalue": self.max_evalue}
        for name in ("homolog_min_arg_probability", "novel_min_arg_probability"):
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        return d

    @classmethod
    def from_json(cls, d: dict) -> Thresholds:
        def optional(name: str) -> float | None:
            return None if d.get(name) is None else float(d[name])
        return cls(float(d["reference_min_identity"]), float(d["reference_min_coverage"]),
                   float(d["max_evalue"]), optional("homolog_min_arg_probability"),
                   optional("novel_min_arg_probability"))


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
    # When this reference is a known non-ARG: the nearest ARG reference, if one aligns.
    nearest_arg: Hit | None = None


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


def supporting_probabilities(p_arg: Sequence[float], sequences: Sequence[str], meta: dict
                             ) -> list[float]:
    """The model's P(ARG) as ``combine`` takes it: 0 for proteins shorter than the artifact's
    ``calibration.min_residues``, whose scores count for nothing (as in the server)."""
    min_residues = int((meta.get("calibration") or {}).get("min_residues", 0))
    return [p if len(clean_residues(s)) >= min_residues else 0.0
            for p, s in zip(p_arg, sequences)]


def combine(model_is_arg: bool, model_label: str, hit: Hit | None, t: Thresholds,
            nonarg_class: str, *, arg_probability: float) -> Call:
    """The call and tier of one protein (the rule in the module docstring); ``arg_probability``
    from ``supporting_probabilities``."""
    h = counted(hit, t)
    if h is not None and is_reference_match(h, t):
        return Call(TIER_REFERENCE, h.label != nonarg_class, h.label, h)
    # A known non-ARG nearer than every ARG reference counts against an ARG call: the call then
    # needs what one without any ARG reference needs; the ARG reference behind it names the class.
    behind_nonarg = h is not None and h.label == nonarg_class
    arg_hit = counted(h.nearest_arg, t) if behind_nonarg else h
    novel_ok = t.novel_min_arg_probability is None or \
        arg_probability >= t.novel_min_arg_probability
    if (arg_hit is not None and t.homolog_min_arg_probability is not None
            and arg_hit.reference_coverage >= t.reference_min_coverage
            and arg_probability >= t.homolog_min_arg_probability
            and (novel_ok or not behind_nonarg)):
        return Call(TIER_HOMOLOG, True, arg_hit.label, arg_hit)
    if model_is_arg and (h is None or behind_nonarg):
        if novel_ok:
            return Call(TIER_NOVEL, True, model_label, h)
        return Call(TIER_MODEL, False, nonarg_class, h)
    if model_is_arg:
        return Call(TIER_MODEL, True, model_label, h)
    return Call(TIER_MODEL, False, nonarg_class, h)


def reference_only(hit: Hit | None, t: Thresholds, nonarg_class: str) -> str:
    """The class the nearest reference alone gives: its class when there is a hit, else non-ARG."""
    h = counted(hit, t)
    return h.label if h is not None else nonarg_class


# The grids the rule is chosen from. Identity 0: any hit within the E-value limit decides; finer
# where distant homologs and the housekeeping relatives of ARGs meet. None: the rule lacks that
# step.
IDENTITY_GRID = (0.0, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)
HOMOLOG_GRID = (None, 0.9, 0.8, 0.7, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)
NOVEL_GRID = (None, 0.95, 0.98, 0.99)


def parse_grid(text: str) -> tuple[float | None, ...]:
    """A grid from the command line: comma-separated fractions, ``none`` for a missing step
    ("none,0.9,0.05" -> (None, 0.9, 0.05))."""
    values: list[float | None] = []
    for item in text.split(","):
        item = item.strip().lower()
        if item == "none":
            values.append(None)
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"grid value {item!r} is neither a number nor 'none'") from None
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"grid value {value:g} is not a fraction in [0, 1]")
        values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class Background:
    """Proteins known not to be ARGs (e.g. argtrain.background), scored for false calls only:
    the model's calls, its P(ARG) as ``combine`` takes it, and the nearest references."""
    model_labels: Sequence[str]
    arg_probabilities: Sequence[float]
    hits: Sequence[Hit | None]


@dataclass(frozen=True)
class RuleScore:
    rule: Thresholds
    macro_f1: float  # on the labelled set
    accuracy: float
    # Share of the non-ARGs, the labelled set's and the background's together, called an ARG.
    false_positive_rate: float
    arg_calls: int  # on the labelled set
    background_false_positives: int = 0
    # Share of a whole proteome's proteins called an ARG (those a ResFinder search finds left
    # out), counted apart: a proteome is not a sample of the labelled set's non-ARGs.
    proteome_false_positive_rate: float | None = None

    @property
    def reference_min_identity(self) -> float:
        return self.rule.reference_min_identity


# ResFinder's default acceptance of a hit: what a ResFinder search would report in a proteome.
RESFINDER_IDENTITY = 0.9
RESFINDER_COVERAGE = 0.6


def resfinder_accepts(label: str, identity: float, reference_coverage: float,
                      nonarg_class: str) -> bool:
    """An ARG reference at >= 90% identity over >= 60% of it (fractions)."""
    return (label != nonarg_class and identity >= RESFINDER_IDENTITY
            and reference_coverage >= RESFINDER_COVERAGE)


def resfinder_like(hit: Hit | None, nonarg_class: str) -> bool:
    """The nearest reference is an ARG that ResFinder would report (``resfinder_accepts``)."""
    return hit is not None and resfinder_accepts(hit.label, hit.identity, hit.reference_coverage,
                                                 nonarg_class)


def _false_calls(proteins: Background, rule: Thresholds, nonarg_class: str) -> int:
    return sum(combine(y != nonarg_class, y, h, rule, nonarg_class, arg_probability=p).is_arg
               for y, p, h in zip(proteins.model_labels, proteins.arg_probabilities,
                                  proteins.hits))


def score_rules(y_true: Sequence[str], model_labels: Sequence[str],
                arg_probabilities: Sequence[float], hits: Sequence[Hit | None],
                classes: Sequence[str], nonarg_class: str, reference_min_coverage: float,
                max_evalue: float, grid: Sequence[float] = IDENTITY_GRID,
                homolog_grid: Sequence[float | None] = (None,),
                novel_grid: Sequence[float | None] = (None,),
                arg_threshold: float | None = None,
                background: Background | None = None,
                proteome: Background | None = None) -> list[RuleScore]:
    """The combined call's macro-F1, accuracy and false-positive rate for each rule of the grids
    (every combination); the background's false calls count in the rate, the proteome's in a rate
    of their own. Novel thresholds at or below the model's own ``arg_threshold`` change nothing and
    are left out."""
    novel = [n for n in novel_grid
             if n is None or arg_threshold is None or n > arg_threshold]
    rows = []
    for identity in grid:
        for homolog in homolog_grid:
            for novel_min in novel:
                rule = Thresholds(identity, reference_min_coverage, max_evalue, homolog, novel_min)
                calls = [combine(y != nonarg_class, y, h, rule, nonarg_class,
                                 arg_probability=p).label
                         for y, p, h in zip(model_labels, arg_probabilities, hits)]
                report = classification_report(list(y_true), calls, list(classes), nonarg_class)
                b = binary_detection(y_true, calls, nonarg_class)
                fp, negatives = b["fp"], b["fp"] + b["tn"]
                background_fp = 0
                if background is not None:
                    background_fp = _false_calls(background, rule, nonarg_class)
                    fp += background_fp
                    negatives += len(background.model_labels)
                proteome_rate = None
                if proteome is not None and proteome.hits:
                    proteome_rate = _false_calls(proteome, rule, nonarg_class) / len(proteome.hits)
                rows.append(RuleScore(rule, report["macro_f1"], report["accuracy"],
                                      fp / negatives if negatives else 0.0,
                                      sum(c != nonarg_class for c in calls), background_fp,
                                      proteome_rate))
    return rows


def _strictness(rule: Thresholds) -> tuple[float, float, float]:
    """Higher is stricter (fewer ARG calls): novel threshold, homolog threshold, identity."""
    novel = -1.0 if rule.novel_min_arg_probability is None else rule.novel_min_arg_probability
    homolog = 2.0 if rule.homolog_min_arg_probability is None else rule.homolog_min_arg_probability
    return novel, homolog, rule.reference_min_identity


def preference(r: RuleScore) -> tuple:
    """Sort key, best last: macro-F1; ties go to fewer false positives (the labelled set's and the
    background's, then the proteome's), then fewer ARG calls, then the stricter rule
    (_strictness): the product meets whole proteomes, where nearly nothing is an ARG."""
    return (round(r.macro_f1, 9), -r.false_positive_rate, -(r.proteome_false_positive_rate or 0.0),
            -r.arg_calls, _strictness(r.rule))


def within_bounds(r: RuleScore, max_false_positive_rate: float,
                  max_proteome_false_positive_rate: float | None = None) -> bool:
    """The rule keeps the false-positive rate, and the proteome's when it has one and a bound is
    given, within the bounds."""
    return r.false_positive_rate <= max_false_positive_rate and (
        max_proteome_false_positive_rate is None or r.proteome_false_positive_rate is None
        or r.proteome_false_positive_rate <= max_proteome_false_positive_rate)


def choose_rule(rows: Sequence[RuleScore], max_false_positive_rate: float,
                max_proteome_false_positive_rate: float | None = None) -> RuleScore:
    """The preferred rule (``preference``) among those within the bounds (``within_bounds``); when
    none is, the one with the fewest false positives (the proteome's first)."""
    if not rows:
        raise ValueError("no thresholds to choose from")
    within = [r for r in rows
              if within_bounds(r, max_false_positive_rate, max_proteome_false_positive_rate)]
    if within:
        return max(within, key=preference)
    return min(rows, key=lambda r: (r.proteome_false_positive_rate or 0.0,
                                    r.false_positive_rate, -r.macro_f1))
