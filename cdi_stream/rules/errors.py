"""Errors raised while loading, compiling and evaluating rules.

Callers need to tell three situations apart: the rules themselves are wrong (fix the
file, keep running the previous version), the engine refused rules that passed
validation (a limit we do not model), and a single evaluation failed (the evaluator
has already arranged to rebuild itself; only that one fact is lost).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_MAX_LISTED = 20
MAX_SHOWN = 100


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One thing wrong with the rules, located as precisely as is known."""

    file: str | None
    rule_id: str | None
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.rule_id, self.message) if part)


class RulesError(Exception):
    """Base of every error about rules; also raised for misuse such as a closed evaluator."""


class RuleValidationError(RulesError):
    """The rules were rejected before reaching the engine; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[RuleProblem]) -> None:
        self.problems: list[RuleProblem] = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the rules"
        super().__init__("\n  ".join([head, *self.listed(_MAX_LISTED)]))

    def listed(self, limit: int = MAX_SHOWN) -> list[str]:
        """The first ``limit`` problems and how many more: a generated or mangled file
        can have hundreds of thousands, and printing them all helps nobody."""
        return listed(map(str, self.problems), len(self.problems), limit)


def listed(problems: Iterable[str], count: int, limit: int = MAX_SHOWN) -> list[str]:
    lines = [p for p, _ in zip(problems, range(limit), strict=False)]
    if count > limit:
        lines.append(f"... and {count - limit} more")
    return lines


class RuleCompileError(RulesError):
    """The engine refused rules that passed validation; ``code`` is its error number, if any."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RuleEvaluationError(RulesError):
    """One evaluation failed: a fact the engine cannot take, or an engine error code.

    After an engine error the evaluator rebuilds its ruleset on the next call, so the
    error concerns the failing call only. ``code`` is the engine's error number, or None
    when the fact was refused before reaching the engine.
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
