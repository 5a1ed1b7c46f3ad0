"""Compiled rules: one durable-rules ruleset per edition, and the edition lookup.

An incident is judged by the edition in force on its ``reported_at`` date (local time,
the editions file's timezone). Each edition compiles the rules in force in it into one
ruleset with one session; the evaluator is asked "which rules match this fact" and the
answer depends only on the fact, so answers are memoised: most incidents produce the
same few fact shapes, and a dictionary look-up is far cheaper than a round trip
through the C core.
"""

from __future__ import annotations

import bisect
import datetime as dt
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cdi_stream.rules.catalog import TIME_CONTEXT, Scope
from cdi_stream.rules.conditions import compile_condition
from cdi_stream.rules.errors import RuleProblem, RulesError, RuleValidationError
from cdi_stream.rules.evaluator import RuleEvaluator
from cdi_stream.rules.loader import RuleSource, load_rules
from cdi_stream.rules.model import EditionDoc

RESOLVED_SUFFIX = "__resolved"
_MEMO_LIMIT = 65_536


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """What the engine needs of a rule at run time."""

    id: str
    title: str
    finding: str
    priority: str
    reference: str
    scope: Scope
    raise_status: str
    event_time: str
    # The context time given as the flag's deadline, or None for the subject's own.
    due_at: str | None
    expected: tuple[tuple[str, str], ...]
    observed: tuple[tuple[str, str], ...]
    explanation: str
    uses: frozenset[str]
    # The context fields in ``uses`` that are times, shown formatted; worked out once
    # here rather than on every flag raised.
    time_uses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match:
    """Which rules hold for one fact, and which say a flag they raised is resolved."""

    raised: frozenset[str]
    resolved: frozenset[str]


class Edition:
    """One period's rules, compiled, with a memo of answers per fact."""

    def __init__(self, doc: EditionDoc, starts_at: float, rules: tuple[CompiledRule, ...]) -> None:
        self.doc = doc
        self.id = doc.id
        self.starts_at = starts_at
        self.rules = rules
        self.by_scope: dict[str, tuple[CompiledRule, ...]] = {}
        for rule in rules:
            self.by_scope[rule.scope] = (*self.by_scope.get(rule.scope, ()), rule)
        self._evaluator: RuleEvaluator | None = None
        self._memo: dict[tuple[Any, ...], Match] = {}
        self._answers: dict[tuple[frozenset[str], frozenset[str]], Match] = {}
        self.evaluations = 0

    def compile(self, conditions: Mapping[str, Mapping[str, Any]]) -> None:
        self._evaluator = RuleEvaluator(f"cdi_{self.id}", conditions)

    def match(self, fact: dict[str, str | int | bool]) -> Match:
        """Rules matching ``fact``; facts with equal items give the same answer."""
        key = tuple(fact.values())
        found = self._memo.get(key)
        if found is not None:
            return found
        if self._evaluator is None:
            raise RulesError(f"edition {self.id} is not compiled")
        self.evaluations += 1
        names = self._evaluator.match(fact)
        raised = frozenset(n for n in names if not n.endswith(RESOLVED_SUFFIX))
        resolved = frozenset(
            n[: -len(RESOLVED_SUFFIX)] for n in names if n.endswith(RESOLVED_SUFFIX)
        )
        # One object per answer, so that equal answers are also identical: the engine
        # compares answers with ``is``.
        found = self._answers.setdefault((raised, resolved), Match(raised, resolved))
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = found
        return found

    def close(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()
            self._evaluator = None


class RuleBook:
    """Every edition of a rules directory, compiled and ready to evaluate."""

    def __init__(self, source: RuleSource) -> None:
        self.source = source
        self.content_hash = source.content_hash
        self.conduct_codes = frozenset(source.editions.conduct_codes)
        zone = ZoneInfo(source.editions.timezone)
        self.editions: list[Edition] = []
        # Problem -> the editions it was found in: the same rule is usually in force in
        # several editions, and its problem is reported once, naming them.
        problems: dict[tuple[str, str | None, str], list[str]] = {}
        for doc in source.editions.editions:
            start = dt.datetime.combine(doc.effective_from, dt.time(0), tzinfo=zone).timestamp()
            loaded = source.rules_for(doc)
            rules = tuple(_compiled(r.doc) for r in loaded)
            edition = Edition(doc, start, rules)
            try:
                edition.compile(_durable_rules(loaded))
            except RuleValidationError as exc:
                files = {r.doc.id: r.file for r in loaded}
                for p in exc.problems:
                    problems.setdefault(_located(p, files, source.directory), []).append(doc.id)
            except RulesError as exc:
                problems.setdefault((str(source.directory), None, str(exc)), []).append(doc.id)
            self.editions.append(edition)
        if problems:
            self.close()
            raise RuleValidationError(
                RuleProblem(file, rule_id, f"{message} ({_editions(ids)})")
                for (file, rule_id, message), ids in problems.items()
            )
        self._starts = [e.starts_at for e in self.editions]

    @classmethod
    def from_directory(cls, directory: Path | str) -> RuleBook:
        return cls(load_rules(directory))

    def edition_for(self, reported_at: float) -> Edition | None:
        """The edition in force at ``reported_at`` (epoch seconds), if any."""
        i = bisect.bisect_right(self._starts, reported_at) - 1
        return self.editions[i] if i >= 0 else None

    def close(self) -> None:
        for edition in self.editions:
            edition.close()

    def __enter__(self) -> RuleBook:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _located(
    problem: RuleProblem, files: Mapping[str, str], directory: Path
) -> tuple[str, str | None, str]:
    """File, rule id and message of a problem the engine's check found in the compiled
    rules, told in terms of the rule as written: its own file and id, and whether it
    is about its ``when`` or its ``resolved_when``."""
    rule_id, message = problem.rule_id, problem.message
    if rule_id is not None and rule_id.endswith(RESOLVED_SUFFIX):
        rule_id = rule_id[: -len(RESOLVED_SUFFIX)]
        message = f"resolved_when: {message}"
    elif rule_id is not None:
        message = f"when: {message}"
    file = files.get(rule_id) if rule_id is not None else None
    return problem.file or file or str(directory), rule_id, message


def _editions(ids: list[str]) -> str:
    return f"edition {ids[0]}" if len(ids) == 1 else f"editions {', '.join(ids)}"


def _compiled(doc: Any) -> CompiledRule:
    template_fields = {f for _, f, _, _ in string.Formatter().parse(doc.explanation) if f}
    uses = frozenset(template_fields | set(doc.expected.values()) | set(doc.observed.values()))
    return CompiledRule(
        id=doc.id,
        title=doc.title,
        finding=doc.finding,
        priority=doc.priority,
        reference=doc.reference + (" [verify]" if doc.verify else ""),
        scope=doc.scope,
        raise_status=doc.raise_status,
        event_time=doc.event_time,
        due_at=doc.due_at,
        expected=tuple(sorted(doc.expected.items())),
        observed=tuple(sorted(doc.observed.items())),
        explanation=" ".join(doc.explanation.split()),
        uses=uses,
        time_uses=tuple(sorted(uses & TIME_CONTEXT)),
    )


def _durable_rules(loaded: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pri, rule in enumerate(loaded, start=1):
        doc = rule.doc
        anchor = {"scope": doc.scope}
        out[doc.id] = {"all": [{"m": {"$and": [anchor, compile_condition(doc.when)]}}], "pri": pri}
        if doc.resolved_when is not None:
            pattern = {"$and": [anchor, compile_condition(doc.resolved_when)]}
            out[doc.id + RESOLVED_SUFFIX] = {"all": [{"m": pattern}], "pri": pri}
    return out
