"""Qualitative findings of a published study ("BN rescues the CNN at lr 0.5"), checked on our numbers.

A finding names the runs it reads and a rule over their metric values. Missing
runs leave it unchecked; a diverged run counts as accuracy 0 (it failed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Finding", "all_beat", "beats", "best", "check", "fails", "rescues", "worst"]

Values = Mapping[str, float]


@dataclass(frozen=True)
class Finding:
    """A published claim and the rule that tests it.

    Attributes:
        text: the claim, as the report states it.
        needs: run labels whose values the rule reads.
        rule: ``rule(values) -> bool`` with ``values[label]`` the run's metric (diverged runs: 0.0).
        metric: which metric (a key of :data:`zoo.studies.spec.METRICS`); None: the study's own.
    """

    text: str
    needs: tuple[str, ...]
    rule: Callable[[Values], bool]
    metric: str | None = None


def check(finding: Finding, values: Mapping[str, float | None]) -> bool | None:
    """True/False whether the finding held, None when a run it needs has no result."""
    if any(values.get(label) is None for label in finding.needs):
        return None
    return bool(finding.rule({label: float(values[label]) for label in finding.needs}))


def fails(text: str, label: str, below: float, metric: str | None = None) -> Finding:
    """The run ends below ``below`` (or diverges)."""
    return Finding(text, (label,), lambda v: v[label] < below, metric)


def beats(text: str, winner: str, loser: str, metric: str | None = None) -> Finding:
    """``winner`` scores higher than ``loser``."""
    return Finding(text, (winner, loser), lambda v: v[winner] > v[loser], metric)


def all_beat(text: str, pairs: Sequence[tuple[str, str]], metric: str | None = None) -> Finding:
    """In every ``(winner, loser)`` pair the winner scores higher."""
    needs = tuple(label for pair in pairs for label in pair)
    return Finding(text, needs, lambda v: all(v[w] > v[lo] for w, lo in pairs), metric)


def best(text: str, winner: str, among: Sequence[str], metric: str | None = None) -> Finding:
    """``winner`` scores highest of ``among`` (which includes it)."""
    labels = tuple(dict.fromkeys((winner, *among)))
    return Finding(text, labels, lambda v: all(v[winner] >= v[other] for other in labels), metric)


def worst(text: str, loser: str, among: Sequence[str], metric: str | None = None) -> Finding:
    """``loser`` scores lowest of ``among`` (which includes it)."""
    labels = tuple(dict.fromkeys((loser, *among)))
    return Finding(text, labels, lambda v: all(v[loser] <= v[other] for other in labels), metric)


def rescues(text: str, failing: str, rescued: str, below: float, above: float, metric: str | None = None) -> Finding:
    """``failing`` ends below ``below`` while ``rescued`` reaches ``above``."""
    return Finding(text, (failing, rescued), lambda v: v[failing] < below and v[rescued] >= above, metric)
