"""The feedback metrics, exactly as DESIGN.md defines them. Pure functions, no database.

- **NPS** (0-10): promoters 9-10, passives 7-8, detractors 0-6; NPS = %promoters -
  %detractors (-100..100), with its sample size and 95% margin of error
  `1.96 * 100 * sqrt((pP + pD - (pP - pD)^2) / n)` (pP, pD the promoter and detractor shares).
- **CSAT** (1-5): CSAT% = share of answers 4 or 5 (0..100).
- **CES** (1-5, 5 = very easy): %easy (4-5) - %difficult (1-2) (-100..100).

No answers: the score (and the margin) is None, never 0. With one answer the margin is 0:
the formula's variance term is 0 for a single answer (it is 0 whenever every answer is in the
same group), which says nothing about certainty; pages mark such small samples instead.

Rounding: the functions return exact floats (30.000000000000004 stays as it is); only what
is shown is rounded, by `display`: one decimal, in the API and on the CX page alike.

The same figures come from counts (`Tally`), which is what the SQL queries return: the
database counts answers per group (COUNT with CASE), Python only divides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import NamedTuple

Z_95 = 1.96


@dataclass(frozen=True)
class NpsResult:
    score: float | None  # -100..100; None without answers
    n: int
    margin: float | None  # 95% margin of error, in NPS points; None without answers
    promoters: int
    passives: int
    detractors: int


class Score(NamedTuple):
    """CSAT% or CES: the score (None without answers) and the number of answers."""

    score: float | None
    n: int


def _checked(scores: Iterable[int | None], low: int, high: int) -> list[int]:
    """The answers given (None: question not answered), each checked against its scale."""
    result = []
    for value in scores:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{value!r} is not an answer on the {low}-{high} scale")
        result.append(value)
    return result


def nps_from_counts(promoters: int, passives: int, detractors: int) -> NpsResult:
    n = promoters + passives + detractors
    if n == 0:
        return NpsResult(None, 0, None, 0, 0, 0)
    p_p = promoters / n
    p_d = detractors / n
    score = 100 * (p_p - p_d)
    # p_p + p_d - (p_p - p_d)^2 is the variance of the per-answer value (+1, 0, -1); it can
    # come out a hair below 0 in floating point when it is 0 in exact arithmetic
    variance = max(0.0, p_p + p_d - (p_p - p_d) ** 2)
    margin = Z_95 * 100 * math.sqrt(variance / n)
    return NpsResult(score, n, margin, promoters, passives, detractors)


def nps(scores: Iterable[int | None]) -> NpsResult:
    """NPS of the 0-10 answers (None entries are skipped: question not asked/answered)."""
    answers = _checked(scores, 0, 10)
    promoters = sum(1 for s in answers if s >= 9)
    detractors = sum(1 for s in answers if s <= 6)
    return nps_from_counts(promoters, len(answers) - promoters - detractors, detractors)


def csat_from_counts(satisfied: int, n: int) -> Score:
    return Score(100 * satisfied / n if n else None, n)


def csat(scores: Iterable[int | None]) -> Score:
    """CSAT%: the share (0..100) of the 1-5 answers that are 4 or 5."""
    answers = _checked(scores, 1, 5)
    return csat_from_counts(sum(1 for s in answers if s >= 4), len(answers))


def ces_from_counts(easy: int, difficult: int, n: int) -> Score:
    return Score(100 * (easy - difficult) / n if n else None, n)


def ces(scores: Iterable[int | None]) -> Score:
    """CES: %easy (4-5) - %difficult (1-2) of the 1-5 answers (3 counts in n only)."""
    answers = _checked(scores, 1, 5)
    easy = sum(1 for s in answers if s >= 4)
    difficult = sum(1 for s in answers if s <= 2)
    return ces_from_counts(easy, difficult, len(answers))


@dataclass(frozen=True)
class Tally:
    """The counts behind the three scores of a group of responses; tallies add up."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    csat_n: int = 0
    csat_satisfied: int = 0  # answers 4-5
    ces_n: int = 0
    ces_easy: int = 0  # answers 4-5
    ces_difficult: int = 0  # answers 1-2

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def responses(self) -> int:
        """Answers to the largest of the three questions (a rough size of the group)."""
        return max(self.promoters + self.passives + self.detractors, self.csat_n, self.ces_n)

    def nps(self) -> NpsResult:
        return nps_from_counts(self.promoters, self.passives, self.detractors)

    def csat(self) -> Score:
        return csat_from_counts(self.csat_satisfied, self.csat_n)

    def ces(self) -> Score:
        return ces_from_counts(self.ces_easy, self.ces_difficult, self.ces_n)


def display(value: float | None, decimals: int = 1) -> float | None:
    """A score as shown: rounded to `decimals` (Python's round), never -0.0."""
    if value is None:
        return None
    return round(value, decimals) + 0.0
