"""DIAMOND best hit within the false-positive bounds that the evidence rule is chosen under.

The plain best-hit baseline (argtrain.baseline) calls every hit within the E-value limit; whole
proteomes are full of housekeeping relatives of ARGs, so it calls many of their proteins. This
variant counts a hit only at or above an identity floor and a floor on the share of the training
protein covered, chosen on a validation set the way ``scripts/choose-evidence-rule.py`` chooses the
evidence rule: the best validation macro-F1 among the floors that keep the validation non-ARGs
called ARG within one bound and, with a proteome, its proteins (those whose best hit is
ResFinder-like left out) within another. It answers what a DIAMOND search with cut-offs fitted to
the same bounds would score next to the product's call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .baseline import BaselinePrediction
from .evidence import IDENTITY_GRID, resfinder_accepts
from .metrics import macro_f1

COVERAGE_GRID = (0.0, 0.5, 0.6, 0.7, 0.8)


@dataclass(frozen=True)
class Floor:
    min_identity: float  # fraction of identical alignment columns
    min_coverage: float  # fraction of the training protein spanned by the alignment

    def to_json(self) -> dict:
        return {"min_identity": self.min_identity, "min_coverage": self.min_coverage}


@dataclass(frozen=True)
class FloorScore:
    floor: Floor
    macro_f1: float             # on the validation set
    false_positive_rate: float  # validation non-ARGs called an ARG
    arg_calls: int              # on the validation set
    proteome_false_positive_rate: float | None = None


def reaches(p: BaselinePrediction, floor: Floor) -> bool:
    """The prediction has a hit at or above both floors."""
    return (p.hit is not None and p.identity is not None and p.target_coverage is not None
            and p.identity / 100 >= floor.min_identity
            and p.target_coverage / 100 >= floor.min_coverage)


def floored_label(p: BaselinePrediction, floor: Floor, nonarg_class: str) -> str:
    """The hit's class when it reaches both floors, else non-ARG."""
    return p.label if reaches(p, floor) else nonarg_class


def called_share(proteins: Sequence[BaselinePrediction], floor: Floor, nonarg_class: str
                 ) -> float:
    """The share of ``proteins`` whose hit reaches the floor with an ARG class."""
    return sum(floored_label(p, floor, nonarg_class) != nonarg_class
               for p in proteins) / len(proteins)


def resfinder_like(p: BaselinePrediction, nonarg_class: str) -> bool:
    """The best hit is an ARG that ResFinder would report (argtrain.evidence.resfinder_accepts)."""
    return (p.identity is not None and p.target_coverage is not None
            and resfinder_accepts(p.label, p.identity / 100, p.target_coverage / 100,
                                  nonarg_class))


def score_floors(y_true: Sequence[str], valid: Sequence[BaselinePrediction],
                 classes: Sequence[str], nonarg_class: str,
                 proteome: Sequence[BaselinePrediction] | None = None,
                 identity_grid: Sequence[float] = IDENTITY_GRID,
                 coverage_grid: Sequence[float] = COVERAGE_GRID) -> list[FloorScore]:
    """Every floor of the grids scored on the validation predictions and, given, the proteome's
    (ResFinder-like best hits already left out by the caller)."""
    if len(y_true) != len(valid):
        raise ValueError(f"{len(y_true)} labels but {len(valid)} predictions")
    negatives = [i for i, y in enumerate(y_true) if y == nonarg_class]
    rows = []
    for identity in identity_grid:
        for coverage in coverage_grid:
            floor = Floor(identity, coverage)
            calls = [floored_label(p, floor, nonarg_class) for p in valid]
            fp = sum(calls[i] != nonarg_class for i in negatives)
            proteome_rate = called_share(proteome, floor, nonarg_class) if proteome else None
            rows.append(FloorScore(floor, macro_f1(list(y_true), calls, list(classes)),
                                   fp / len(negatives) if negatives else 0.0,
                                   sum(c != nonarg_class for c in calls), proteome_rate))
    return rows


def choose_floor(rows: Sequence[FloorScore], max_false_positive_rate: float,
                 max_proteome_false_positive_rate: float) -> FloorScore | None:
    """The best macro-F1 within both bounds (ties: fewer false calls, then the stricter floor);
    None when no floor is within them."""
    within = [r for r in rows if r.false_positive_rate <= max_false_positive_rate
              and (r.proteome_false_positive_rate or 0.0) <= max_proteome_false_positive_rate]
    if not within:
        return None
    return max(within, key=lambda r: (round(r.macro_f1, 9), -r.false_positive_rate,
                                      -(r.proteome_false_positive_rate or 0.0),
                                      r.floor.min_identity, r.floor.min_coverage))
