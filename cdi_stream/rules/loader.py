"""Reading and validating a rules directory.

Everything a rules directory can get wrong is found here, reported with its file and
rule id, before any of it is compiled: a bad rules file must never reach the engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
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
_SUFFIXES = (".yaml", ".yml")
_MAX_FILE_BYTES = 1_048_576
# Far deeper than any rule needs (conditions stop at a few levels), far shallower than
# what exhausts Python's stack while the document is composed.
_MAX_YAML_DEPTH = 64
# Far more rules than a counting-rules book needs; checking more would only make a
# mangled or generated file slow to reject (and a reload hold up its worker).
_MAX_DOCUMENTS = 200


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
        found = [r for r in self.rules if _in_force(r.doc, edition.effective_from)]
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
    try:
        entries = _read_entries(root)
    except OSError as exc:
        raise RuleValidationError(
            [RuleProblem(str(root), None, f"cannot list the directory: {exc.strerror or exc}")]
        ) from None
    editions: EditionsFile | None = None
    editions_seen: list[str] = []
    rules: list[LoadedRule] = []
    for entry in entries:
        path = entry.path
        if entry.problem is not None:
            problems.append(RuleProblem(str(path), None, entry.problem))
            if _is_editions_file(path):
                editions_seen.append(path.name)  # reported as it is, not as missing
            continue
        known = len(problems)
        docs = _parse_yaml(path, entry.raw, problems)
        if _is_editions_file(path):
            editions_seen.append(path.name)
            if len(editions_seen) > 1:
                message = f"more than one editions file: {', '.join(editions_seen)}"
                problems.append(RuleProblem(str(path), None, message))
                continue
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
        if rules and not problems:
            problems.extend(_empty_editions(root / editions_seen[0], rules, editions))
    if problems:
        raise RuleValidationError(problems)
    assert editions is not None
    return RuleSource(root, editions, tuple(rules), _hash(entries))


def content_hash(directory: Path | str) -> str:
    """The hash ``load_rules`` would give the directory, without parsing it: a cheap
    way for a running worker to notice that its rules changed."""
    return _hash(_read_entries(Path(directory)))


@dataclass(frozen=True, slots=True)
class _Entry:
    """One rules file as read: its bytes, or why it could not be used."""

    path: Path
    raw: bytes
    problem: str | None = None


def _read_entries(root: Path) -> list[_Entry]:
    """Every YAML-named entry of ``root`` (suffix in any case), read or explained.

    Hidden entries (dotfiles such as ``._deadlines.yaml`` left by macOS, or editor
    swap files) are skipped on purpose: they are never rules someone meant to deploy,
    and a ConfigMap mount keeps its own bookkeeping in hidden ``..data`` entries. Every
    other YAML-named entry counts: one that is not a readable regular file (a broken
    symbolic link, a directory, a pipe) is reported, because skipping it would silently
    drop the rules it was meant to hold.
    """
    entries: list[_Entry] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in _SUFFIXES:
            continue
        entries.append(_read_entry(path))
    return entries


def _read_entry(path: Path) -> _Entry:
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return _Entry(path, b"", "a symbolic link to nothing (its target does not exist)")
        return _Entry(path, b"", "vanished while being read")
    except OSError as exc:
        return _Entry(path, b"", f"cannot read: {exc.strerror or exc}")
    if stat.S_ISDIR(info.st_mode):
        return _Entry(path, b"", "a directory, not a rules file")
    if not stat.S_ISREG(info.st_mode):
        # Never opened: reading a pipe or a device could block the worker forever.
        return _Entry(path, b"", "not a regular file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        return _Entry(path, b"", f"cannot read: {exc.strerror or exc}")
    if len(raw) > _MAX_FILE_BYTES:
        return _Entry(path, raw, "file larger than 1 MiB")
    return _Entry(path, raw)


def _hash(entries: list[_Entry]) -> str:
    digest = hashlib.sha256()
    for entry in entries:
        # A file name need not be UTF-8 (undecodable bytes come back as surrogates).
        digest.update(os.fsencode(entry.path.name) + b"\0" + entry.raw + b"\0")
        if entry.problem is not None:
            digest.update(b"\1" + entry.problem.encode(errors="surrogateescape") + b"\0")
    return digest.hexdigest()[:16]


def _is_editions_file(path: Path) -> bool:
    return path.stem == Path(EDITIONS_FILE).stem


class _RuleFileError(yaml.YAMLError):
    """Valid YAML that a rules file may not use; ``mark`` says where."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _RuleFileLoader(yaml.SafeLoader):
    """The safe loader, stricter where a rules file could hurt or mislead.

    * Anchors and aliases are refused: a few kilobytes of nested aliases expand to
      billions of nodes, which would hang ``rules check`` and a reloading worker's
      event loop while the conditions are walked.
    * A key given twice in one mapping is refused: YAML would silently keep the last.
    * Nesting is bounded, so that a deep document is a problem, not a RecursionError.
    * Tags without a safe constructor, and values their tag cannot take (a date such
      as 2024-13-01), are reported with their line instead of a bare exception.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _RuleFileError(
                "YAML anchors and aliases (&name, *name) are not allowed in rules files; "
                "write each value out",
                event.start_mark,
            )
        if self._depth >= _MAX_YAML_DEPTH:
            raise _RuleFileError(f"nested deeper than {_MAX_YAML_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as exc:
            raise _RuleFileError(
                f"{node.value!r} is not a valid {_tag_name(node.tag)}: {exc}", node.start_mark
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: the safe constructor reports it
                if first is not None:
                    raise _RuleFileError(
                        f"key {key!r} given twice (first at line {first})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def construct_undefined(self, node: yaml.Node) -> Any:
        tag = _tag_name(node.tag)
        kind = "unsafe" if "python/" in node.tag else "unknown"
        raise _RuleFileError(
            f"{kind} tag {tag}: rules files hold plain data only (text, numbers, "
            "true/false, dates, lists and mappings)",
            node.start_mark,
        )


_RuleFileLoader.add_constructor(None, _RuleFileLoader.construct_undefined)


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag


def _parse_yaml(path: Path, raw: bytes, problems: list[RuleProblem]) -> list[Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(RuleProblem(str(path), None, "not UTF-8 text"))
        return []
    try:
        docs = []
        for count, doc in enumerate(yaml.load_all(text, Loader=_RuleFileLoader), start=1):
            if count > _MAX_DOCUMENTS:  # empty ones count too: each takes parsing
                message = f"more than {_MAX_DOCUMENTS} documents in one file"
                problems.append(RuleProblem(str(path), None, message))
                return []
            if doc is not None:
                docs.append(doc)
        return docs
    except _RuleFileError as exc:
        where = f"line {exc.mark.line + 1}: " if exc.mark is not None else ""
        problems.append(RuleProblem(str(path), None, f"{where}{exc.message}"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problems.append(RuleProblem(str(path), None, f"YAML syntax error{where}: {exc}"))
    except RecursionError:
        problems.append(RuleProblem(str(path), None, "nested too deeply to read"))
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
        parts = [str(p) for p in err["loc"]]
        message = err["msg"].removeprefix("Value error, ")  # our own checks say enough
        if len(parts) >= 2 and parts[-1] == "[key]":
            # pydantic locates a bad mapping key as "<key>.[key]": name the key instead.
            key = parts[-2] if len(parts[-2]) <= 40 else parts[-2][:37] + "..."
            parts, message = parts[:-2], f"key {key!r}: {message}"
        if err["type"] == "string_type" and isinstance(err.get("input"), bool):
            message += (
                f"; YAML reads an unquoted yes/no/on/off as {str(err['input']).lower()}:"
                " quote the text"
            )
        yield f"{'.'.join(parts) or '(document)'}: {message}"


def _in_force(doc: RuleDoc, day: dt.date) -> bool:
    return doc.effective_from <= day and (doc.effective_to is None or doc.effective_to >= day)


def _empty_editions(
    path: Path, rules: list[LoadedRule], editions: EditionsFile
) -> list[RuleProblem]:
    """An edition no rule is in force in would judge nothing, without a word."""
    out: list[RuleProblem] = []
    for edition in editions.editions:
        start = edition.effective_from
        if not any(_in_force(r.doc, start) for r in rules):
            message = (
                f"edition {edition.id} (from {start}) has no rule in force; start it where "
                f"rules apply, or give rules an effective_from of {start}"
            )
            out.append(RuleProblem(str(path), None, message))
    return out


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
    times = context & TIME_CONTEXT
    for field, name in (("event_time", doc.event_time), ("due_at", doc.due_at)):
        if name is not None and name not in times:
            out.append(f"{field}: {name!r} is not a time of scope {doc.scope} {sorted(times)}")
    for field, mapping in (("expected", doc.expected), ("observed", doc.observed)):
        for key, source in mapping.items():
            if source not in context:
                out.append(f"{field}.{key}: {source!r} is not a value of scope {doc.scope}")
    out.extend(_check_template(doc.explanation, context))
    if doc.effective_to is not None and doc.effective_to < doc.effective_from:
        out.append("effective_to is before effective_from")
    if doc.effective_from not in starts:
        out.append(f"effective_from {doc.effective_from} is not the start of an edition")
    if doc.effective_to is not None and (
        doc.effective_to == dt.date.max or doc.effective_to + dt.timedelta(days=1) not in starts
    ):
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
            # Naming the other file finds a stray copy ("deadlines copy.yaml") at once.
            message = "periods of this rule id overlap"
            if prev.file != nxt.file:
                message += f" with the version in {prev.file}"
            out.append(RuleProblem(nxt.file, rule_id, message))
    kept = ("finding", "scope", "raise_status")
    for other in versions[1:]:
        # The engine settles a flag's fate (withdrawn or left as raised) by rule id,
        # whatever the edition it was raised under, so these must not differ.
        changed = [k for k in kept if getattr(other.doc, k) != getattr(first.doc, k)]
        if changed:
            msg = "every version of a rule id must keep its finding, scope and raise_status"
            out.append(RuleProblem(other.file, rule_id, f"{msg} ({', '.join(changed)} differ)"))
    return out
