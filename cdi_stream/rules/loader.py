"""Reading and validating a rules directory.

Everything a rules directory can get wrong is found here, reported with its file and
rule id, before any of it is compiled: a bad rules file must never reach the engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import string
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cdi_stream.rules.catalog import CONTEXT, TIME_CONTEXT
from cdi_stream.rules.conditions import check
from cdi_stream.rules.errors import RuleProblem, RuleValidationError
from cdi_stream.rules.model import EditionDoc, EditionsFile, RuleDoc

EDITIONS_FILE = "editions.yaml"
_MAX_FILE_BYTES = 1_048_576


@dataclass(frozen=True, slots=True)
class LoadedRule:
    doc: RuleDoc
    file: str


@dataclass(frozen=True, slots=True)
class RuleSource:
    """A validated rules directory: editions, rules, and a hash of what was read."""

    directory: Path
    editions: EditionsFile
    rules: tuple[LoadedRule, ...]
    content_hash: str

    def rules_for(self, edition: EditionDoc) -> tuple[LoadedRule, ...]:
        """The rules in force throughout ``edition``, in a fixed order (by id)."""
        found = [
            r
            for r in self.rules
            if r.doc.effective_from <= edition.effective_from
            and (r.doc.effective_to is None or r.doc.effective_to >= edition.effective_from)
        ]
        return tuple(sorted(found, key=lambda r: r.doc.id))


# The rules at the top of a source checkout.
SOURCE_RULES = Path(__file__).resolve().parents[2] / "rules"
# Where an installed wheel puts them (``data-files`` in pyproject.toml).
INSTALLED_RULES = Path(sys.prefix) / "share" / "cdi-stream" / "rules"


def default_rules_dir() -> Path:
    """The shipped rules: beside the package in a source checkout, else where an
    installed wheel put them, else ./rules."""
    for candidate in (SOURCE_RULES, INSTALLED_RULES):
        if (candidate / EDITIONS_FILE).is_file():
            return candidate
    return Path("rules")


def load_rules(directory: Path | str) -> RuleSource:
    """Read and validate ``directory``; raise RuleValidationError listing every problem."""
    root = Path(directory)
    problems: list[RuleProblem] = []
    if not root.is_dir():
        raise RuleValidationError([RuleProblem(str(root), None, "not a directory")])
    digest = hashlib.sha256()
    editions: EditionsFile | None = None
    editions_seen = False
    rules: list[LoadedRule] = []
    for path in _rule_files(root):
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        if len(raw) > _MAX_FILE_BYTES:
            problems.append(RuleProblem(str(path), None, "file larger than 1 MiB"))
            continue
        known = len(problems)
        docs = _parse_yaml(path, raw, problems)
        if path.name == EDITIONS_FILE:
            editions_seen = True
            editions = _parse_editions(path, docs, problems)
        elif not docs and len(problems) == known:
            # A file truncated while being written would otherwise remove its rules
            # from a running worker without a word.
            problems.append(RuleProblem(str(path), None, "holds no YAML document (empty?)"))
        else:
            rules.extend(_parse_rules(path, docs, problems))
    if not editions_seen:
        problems.append(RuleProblem(str(root / EDITIONS_FILE), None, "missing editions file"))
    elif not rules and not problems:
        problems.append(RuleProblem(str(root), None, "no rule documents found"))
    if editions is not None:
        problems.extend(_check_rules(rules, editions))
    if problems:
        raise RuleValidationError(problems)
    assert editions is not None
    return RuleSource(root, editions, tuple(rules), digest.hexdigest()[:16])


def content_hash(directory: Path | str) -> str:
    """The hash ``load_rules`` would give the directory, without parsing it: a cheap
    way for a running worker to notice that its rules changed."""
    digest = hashlib.sha256()
    for path in _rule_files(Path(directory)):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _rule_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _parse_yaml(path: Path, raw: bytes, problems: list[RuleProblem]) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(raw.decode("utf-8")) if d is not None]
    except UnicodeDecodeError:
        problems.append(RuleProblem(str(path), None, "not UTF-8 text"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problems.append(RuleProblem(str(path), None, f"YAML syntax error{where}: {exc}"))
    return []


def _parse_editions(
    path: Path, docs: list[Any], problems: list[RuleProblem]
) -> EditionsFile | None:
    if len(docs) != 1:
        problems.append(RuleProblem(str(path), None, "must hold exactly one YAML document"))
        return None
    try:
        parsed = EditionsFile.model_validate(docs[0])
    except ValidationError as exc:
        problems.extend(RuleProblem(str(path), None, m) for m in _pydantic_messages(exc))
        return None
    ids = [e.id for e in parsed.editions]
    if len(set(ids)) != len(ids):
        problems.append(RuleProblem(str(path), None, "edition ids must be unique"))
    starts = [e.effective_from for e in parsed.editions]
    if starts != sorted(set(starts)):
        problems.append(RuleProblem(str(path), None, "editions must start on strictly later dates"))
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(parsed.timezone)
    except Exception:
        problems.append(RuleProblem(str(path), None, f"unknown timezone {parsed.timezone!r}"))
    return parsed


def _parse_rules(path: Path, docs: list[Any], problems: list[RuleProblem]) -> list[LoadedRule]:
    out: list[LoadedRule] = []
    for index, doc in enumerate(docs):
        rule_id = doc.get("id") if isinstance(doc, dict) else None
        label = str(rule_id) if isinstance(rule_id, str) else f"document {index + 1}"
        try:
            parsed = RuleDoc.model_validate(doc)
        except ValidationError as exc:
            problems.extend(RuleProblem(str(path), label, m) for m in _pydantic_messages(exc))
            continue
        out.append(LoadedRule(parsed, str(path)))
    return out


def _pydantic_messages(exc: ValidationError) -> Iterable[str]:
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(document)"
        yield f"{loc}: {err['msg']}"


def _check_rules(rules: list[LoadedRule], editions: EditionsFile) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    starts = {e.effective_from for e in editions.editions}
    by_id: dict[str, list[LoadedRule]] = defaultdict(list)
    for rule in rules:
        by_id[rule.doc.id].append(rule)
        problems.extend(
            RuleProblem(rule.file, rule.doc.id, m) for m in _check_one(rule.doc, starts)
        )
    for rule_id, versions in by_id.items():
        problems.extend(_check_versions(rule_id, versions))
    return problems


def _check_one(doc: RuleDoc, starts: set[dt.date]) -> list[str]:
    out = check(doc.when, doc.scope)
    if doc.resolved_when is not None:
        out.extend(
            m.replace("when", "resolved_when", 1) for m in check(doc.resolved_when, doc.scope)
        )
    context = set(CONTEXT[doc.scope])
    if doc.event_time not in context or doc.event_time not in TIME_CONTEXT:
        usable = sorted(context & TIME_CONTEXT)
        out.append(f"event_time: {doc.event_time!r} is not a time of scope {doc.scope} {usable}")
    for field, mapping in (("expected", doc.expected), ("observed", doc.observed)):
        for key, source in mapping.items():
            if source not in context:
                out.append(f"{field}.{key}: {source!r} is not a value of scope {doc.scope}")
    out.extend(_check_template(doc.explanation, context))
    if doc.effective_to is not None and doc.effective_to < doc.effective_from:
        out.append("effective_to is before effective_from")
    if doc.effective_from not in starts:
        out.append(f"effective_from {doc.effective_from} is not the start of an edition")
    if doc.effective_to is not None and doc.effective_to + dt.timedelta(days=1) not in starts:
        out.append(f"effective_to {doc.effective_to} is not the day before an edition starts")
    if doc.raise_status == "resolved" and doc.resolved_when is not None:
        out.append("resolved_when has no meaning for a rule raised as resolved")
    return out


def _check_template(template: str, context: set[str]) -> list[str]:
    out: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"explanation: {exc}"]
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in context:
            out.append(f"explanation: unknown placeholder {{{field}}}")
        if spec or conversion:
            out.append(f"explanation: {{{field}}} may not carry a format spec or conversion")
    return out


def _check_versions(rule_id: str, versions: list[LoadedRule]) -> list[RuleProblem]:
    out: list[RuleProblem] = []
    first = versions[0]
    ordered = sorted(versions, key=lambda r: r.doc.effective_from)
    for prev, nxt in pairwise(ordered):
        if prev.doc.effective_to is None or prev.doc.effective_to >= nxt.doc.effective_from:
            out.append(RuleProblem(nxt.file, rule_id, "periods of this rule id overlap"))
    for other in versions[1:]:
        if (other.doc.finding, other.doc.scope) != (first.doc.finding, first.doc.scope):
            msg = "every version of a rule id must keep its finding and scope"
            out.append(RuleProblem(other.file, rule_id, msg))
    return out
