"""Accuracy of wait predictions: RMSE, MAE, bias and the share within +-max(2 min, 20%)."""

from __future__ import annotations

import math
from dataclasses import dataclass

METHODS = ("estimator", "queue_length", "les", "hol")


@dataclass(frozen=True)
class Accuracy:
    n: int
    rmse_s: float
    mae_s: float
    bias_s: float  # mean of predicted - actual: positive means over-estimated
    within: float  # share with |predicted - actual| <= max(120 s, 20% of actual)


def accuracy(pairs: list[tuple[float, float]]) -> Accuracy:
    """`pairs` of (predicted, actual) seconds."""
    if not pairs:
        return Accuracy(0, math.nan, math.nan, math.nan, math.nan)
    errors = [p - a for p, a in pairs]
    n = len(errors)
    ok = sum(1 for (p, a) in pairs if abs(p - a) <= max(120.0, 0.2 * a))
    return Accuracy(
        n=n,
        rmse_s=math.sqrt(sum(e * e for e in errors) / n),
        mae_s=sum(abs(e) for e in errors) / n,
        bias_s=sum(errors) / n,
        within=ok / n,
    )


def coverage(triples: list[tuple[float, float, float]]) -> tuple[float, float]:
    """Share of actual waits above the high end and below the low end of the quoted range."""
    if not triples:
        return math.nan, math.nan
    above = sum(1 for lo, hi, a in triples if a > hi)
    below = sum(1 for lo, hi, a in triples if a < lo)
    return above / len(triples), below / len(triples)


def method_pairs(predictions) -> dict[str, list[tuple[float, float]]]:
    """(predicted, actual) per method for the served tickets of `replay` predictions."""
    out: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
    for p in predictions:
        if p.actual_s is None:
            continue
        out["estimator"].append((p.predicted_s, p.actual_s))
        for name, value in p.baselines.items():
            out[name].append((value, p.actual_s))
    return out


def format_table(rows: dict[str, Accuracy]) -> list[str]:
    lines = [f"{'method':<14}{'n':>7}{'RMSE s':>10}{'MAE s':>10}{'bias s':>10}{'within':>9}"]
    for name, a in rows.items():
        lines.append(
            f"{name:<14}{a.n:>7}{a.rmse_s:>10.1f}{a.mae_s:>10.1f}{a.bias_s:>+10.1f}{a.within:>9.1%}"
        )
    return lines
