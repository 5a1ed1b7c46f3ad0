"""What the durable-rules 2.0.28 C core can take, checked before anything is compiled.

The core has fixed-size tables and no bounds checks worth the name: past some limits it
returns an error, past others it hangs at 100% CPU, loops forever or writes out of
bounds. None of that may be discovered in production, so rule dicts are checked here
against a model of the Rete network the core would build (read from its source, then
measured), and anything that could reach a bad limit is rejected with a readable reason.

Rule dicts use the core's own structure, restricted to what one-fact evaluation needs::

    {"all": [{"m": {"$and": [{"scope": "subject"}, {"$gt": {"age": 17}}]}}], "pri": 1}

* A rule has ``all`` (exactly one pattern) or ``any`` (1-16 patterns) and an optional
  integer ``pri`` in 0..65535 (the core stores it in 16 bits). An ``all`` rule with two
  patterns needs two facts at once and could never match a single asserted fact.
* A condition is a mapping with exactly one key: ``$and``/``$or`` with a non-empty list,
  ``$neq $lt $lte $gt $gte $mt $ex $nex`` with a one-field mapping, or ``field: value``
  (equality). The core reads only the first key of a mapping and silently ignores the
  rest, so ``{"a": 1, "b": 2}`` would test ``a`` alone; it is rejected.
* Values are str, bool, int (64-bit) or finite float; floats are written without
  exponents by :func:`to_engine_json` (the core's parser rejects ``1e-05``).
* Every pattern needs a positive equality that must hold whatever ``$or`` branch is
  taken (an anchor). The session's own state fact ``{"sid", "id", "$s"}`` then can never
  match, which would otherwise make the first assert loop forever.
* Field names are ``[a-z_][a-z0-9_]*``, not ``id``/``sid``. The core finds properties,
  operators and ids by a 32-bit FNV-1a hash of the name with no string compare, so a
  field whose hash equals another field's, ``id``'s or an operator's would be silently
  confused with it; such names are rejected.
* A field is compared with one kind of value only (text, number or true/false). The core
  compares mixed kinds as text (``"5" == 5``, ``"abc" > 4`` and ``True == "true"`` are
  all true), so mixing them is rejected here and the evaluator refuses facts whose value
  kind differs from the rules'.
* ``$mt`` is a full match on the JSON text of the value: a backslash or quote in the
  regex would be a JSON escape the regex compiler sees, so write ``[.]``, ``[0-9]``.
  Non-ASCII characters in a regex never match, so regexes must be ASCII.
* Text order (``$lt`` on strings) compares JSON bytes up to the longer length, so a
  fact value that is a prefix of the rule's text sorts after it when the next character
  is below ``"`` (``"ab" < "ab!"`` is false). Such rule texts are rejected.

Limits of the network (per Rete node: a condition after the conditions that lead to it):

=============================================  ==========  ==============================
what                                           allowed     past the core's limit
=============================================  ==========  ==============================
distinct conditions directly under one node    500         512: every assert hangs
``$nex`` conditions and ``$or`` exits per node 120         129: writes out of bounds
rules ending on one identical condition        250         256: segfault
alpha nodes one fact can match at once         60          65: error 303 for that fact
``$and``/``$or`` groups in one pattern         15          16: error 113 at compile
``$and``/``$or`` nesting                       8
leaf conditions in one pattern                 32
patterns in one rule                           16
rules                                          4000        4097: error 106
=============================================  ==========  ==============================
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any, Final

from cdi_stream.rules.errors import RuleProblem

MAX_RULES: Final = 4000
MAX_CONDITIONS_PER_NODE: Final = 500
MAX_LINKS_PER_NODE: Final = 120
MAX_RULES_PER_CONDITION: Final = 250
MAX_ALPHA_STACK: Final = 60
MAX_GROUPS_PER_PATTERN: Final = 15
MAX_NESTING: Final = 8
MAX_CONDITIONS_PER_PATTERN: Final = 32
MAX_PATTERNS_PER_RULE: Final = 16
MAX_PRI: Final = 65535
MAX_RULE_NAME_CHARS: Final = 200
MAX_FIELD_NAME_CHARS: Final = 64
MAX_STRING_CHARS: Final = 65536
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1

COMPARISONS: Final = frozenset({"$neq", "$lt", "$lte", "$gt", "$gte", "$mt", "$ex", "$nex"})
ORDERINGS: Final = frozenset({"$lt", "$lte", "$gt", "$gte"})
GROUPS: Final = frozenset({"$and", "$or"})

FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
# Characters JSON writes as escapes: the core sees the escaped text, not the character.
JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Text compared by order must not contain what sorts below the closing quote (0x22).
_ORDER_UNSAFE = re.compile(r'[ !"\\\x00-\x1f]')

# Names the core recognises by hash. A field hashing to one of these is misread.
_RESERVED_NAMES: Final = (
    *("id", "sid", "$s", "$i", "$forward", "$m", "$l", "$r", "$add", "$sub", "$mul", "$div"),
    *("$eq", "$neq", "$lt", "$lte", "$gt", "$gte", "$mt", "$imt", "$ex", "$nex"),
    *("$iall", "$iany", "$and", "$or", "$all", "$any", "$not"),
)


def field_hash(name: str) -> int:
    """The core's 32-bit FNV-1a hash of a property name (how it tells names apart)."""
    value = 0x811C9DC5
    for byte in name.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


RESERVED_HASHES: Final = {field_hash(n): n for n in _RESERVED_NAMES}


def format_float(value: float) -> str:
    """JSON text for a finite float that the core parses back to the same double.

    Python writes ``1e-05`` and ``1e+16``; the core's parser stops at the ``e`` and
    fails, so exponents are expanded. A trailing ``.0`` keeps integral floats doubles.
    """
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if "." not in text:
        text += ".0"
    return text


def to_engine_json(value: object) -> str:
    """Serialise checked rules exactly as the core must read them.

    Strings go through the same encoder as fact values, so equality between a pattern
    and a fact compares identical bytes even when the text has quotes or newlines.
    """
    if isinstance(value, str):
        return encode_basestring(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, Mapping):
        items = (f"{encode_basestring(str(k))}:{to_engine_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_engine_json(v) for v in value) + "]"
    raise ValueError(f"cannot write {type(value).__name__} for the rules engine")


def value_kind(value: object) -> str | None:
    """``"bool"``, ``"number"`` or ``"text"`` for a value the core can compare, else None."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


@dataclass(frozen=True, slots=True)
class RulesProfile:
    """What checking found: the problems, and what the evaluator needs to guard facts.

    ``fields`` are all the field names the rules test; ``field_kinds`` maps each field
    compared with values to the kind of those values; ``text_fields`` are fields compared
    by regex or string order, where JSON escapes in a fact's value would change the answer.
    """

    problems: tuple[RuleProblem, ...]
    fields: frozenset[str]
    field_kinds: Mapping[str, str]
    text_fields: frozenset[str]
    alpha_stack: int


def check_durable_rules(rules: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Readable problems with ``rules`` that would hang, loop, crash or fail in the core."""
    return [str(p) for p in inspect_rules(rules).problems]


def inspect_rules(rules: Mapping[str, Mapping[str, Any]]) -> RulesProfile:
    """Check ``rules`` and describe the fields they use (see :class:`RulesProfile`)."""
    checker = _Checker()
    if not isinstance(rules, Mapping):
        checker.problem(None, "the rules must be a mapping of rule name to rule")
    elif not rules:
        checker.problem(None, "there are no rules")
    else:
        if len(rules) > MAX_RULES:
            checker.problem(None, f"{len(rules)} rules; the core takes at most {MAX_RULES} here")
        for name, rule in rules.items():
            checker.rule(name, rule)
        checker.mixed_kinds()
        checker.network()
    kinds = {f: next(iter(k)) for f, k in checker.kinds.items() if len(k) == 1}
    return RulesProfile(
        problems=tuple(checker.problems),
        fields=frozenset(checker.names_by_hash.values()),
        field_kinds=kinds,
        text_fields=frozenset(checker.text_fields),
        alpha_stack=checker.alpha_stack,
    )


# One condition as the core keys its nodes: operator, field, JSON type, value.
_Key = tuple[str, str, str, Any]


@dataclass(slots=True)
class _Node:
    label: str
    children: dict[_Key, int] = field(default_factory=dict)
    nex: dict[_Key, int] = field(default_factory=dict)
    links: list[int] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Pattern:
    groups: int = 0
    leaves: int = 0


class _Checker:
    def __init__(self) -> None:
        self.problems: list[RuleProblem] = []
        self.kinds: dict[str, set[str]] = defaultdict(set)
        self.kind_seen: dict[tuple[str, str], str] = {}
        self.text_fields: set[str] = set()
        self.names_by_hash: dict[int, str] = {}
        self.nodes: list[_Node] = [_Node("(start)")]
        self.alpha_stack = 0

    def problem(self, rule: str | None, message: str) -> None:
        self.problems.append(RuleProblem(None, rule, message))

    # -- structure -------------------------------------------------------------------

    def rule(self, name: object, rule: object) -> None:
        if not isinstance(name, str) or not name or len(name) > MAX_RULE_NAME_CHARS:
            self.problem(None, f"rule name {name!r} must be text of 1-{MAX_RULE_NAME_CHARS} chars")
            return
        if _CONTROL.search(name):
            self.problem(None, f"rule name {name!r} has control characters")
            return
        if not isinstance(rule, Mapping):
            self.problem(name, "a rule must be a mapping with 'all' or 'any'")
            return
        extra = sorted(str(k) for k in rule if k not in ("all", "any", "pri"))
        if extra:
            self.problem(name, f"unsupported rule keys {extra} (only all, any, pri)")
        if ("all" in rule) == ("any" in rule):
            self.problem(name, "a rule needs exactly one of 'all' or 'any'")
            return
        pri = rule.get("pri", 0)
        if isinstance(pri, bool) or not isinstance(pri, int) or not 0 <= pri <= MAX_PRI:
            self.problem(name, f"pri must be an integer in 0..{MAX_PRI}, got {pri!r}")
        gate = "all" if "all" in rule else "any"
        patterns = rule[gate]
        if not isinstance(patterns, list) or not patterns:
            self.problem(name, f"'{gate}' must be a non-empty list of patterns")
            return
        if gate == "all" and len(patterns) > 1:
            self.problem(
                name,
                f"'all' with {len(patterns)} patterns needs that many facts at once, but one "
                "fact is evaluated at a time so it could never match; use one $and pattern",
            )
            return
        if len(patterns) > MAX_PATTERNS_PER_RULE:
            self.problem(name, f"{len(patterns)} patterns; at most {MAX_PATTERNS_PER_RULE}")
            return
        for entry in patterns:
            if not isinstance(entry, Mapping) or len(entry) != 1:
                self.problem(name, "each pattern must be a one-key mapping {alias: condition}")
                continue
            alias, condition = next(iter(entry.items()))
            if not isinstance(alias, str) or not FIELD_NAME.match(alias):
                self.problem(name, f"pattern alias {alias!r} must match [a-z_][a-z0-9_]*")
                continue
            self.pattern(name, condition)

    def pattern(self, rule: str, condition: object) -> None:
        stats = _Pattern()
        anchored = self.condition(rule, condition, 0, stats)
        if anchored is None:
            return
        bad = False
        if not anchored:
            self.problem(
                rule,
                "the pattern has no equality that holds on every path (an anchor such as "
                "{scope: ...}); without one it can match the session's state fact and loop",
            )
            bad = True
        if stats.groups > MAX_GROUPS_PER_PATTERN:
            self.problem(rule, f"{stats.groups} $and/$or groups; at most {MAX_GROUPS_PER_PATTERN}")
            bad = True
        if stats.leaves > MAX_CONDITIONS_PER_PATTERN:
            self.problem(rule, f"{stats.leaves} conditions; at most {MAX_CONDITIONS_PER_PATTERN}")
            bad = True
        if not bad and isinstance(condition, Mapping):
            end = self.build(condition, 0)
            self.nodes[end].rules.append(rule)

    def condition(self, rule: str, cond: object, depth: int, stats: _Pattern) -> bool | None:
        """Check one condition; None when invalid, else whether it anchors the pattern."""
        if not isinstance(cond, Mapping) or len(cond) != 1:
            self.problem(
                rule,
                f"{_short(cond)}: a condition must be a mapping with exactly one key "
                "(the core reads the first key only and ignores the others)",
            )
            return None
        key, value = next(iter(cond.items()))
        if key in GROUPS:
            if depth >= MAX_NESTING:
                self.problem(rule, f"$and/$or nested deeper than {MAX_NESTING} levels")
                return None
            stats.groups += 1
            if not isinstance(value, list) or not value:
                self.problem(rule, f"{key} needs a non-empty list of conditions")
                return None
            results = [self.condition(rule, sub, depth + 1, stats) for sub in value]
            if any(r is None for r in results):
                return None
            return any(results) if key == "$and" else all(results)
        if key in COMPARISONS:
            if not isinstance(value, Mapping) or len(value) != 1:
                self.problem(rule, f"{key} takes a one-field mapping, got {_short(value)}")
                return None
            name, operand = next(iter(value.items()))
            if not self.field(rule, name):
                return None
            stats.leaves += 1
            return False if self.operand(rule, key, name, operand) else None
        if not isinstance(key, str) or key.startswith("$"):
            known = ", ".join(sorted(GROUPS | COMPARISONS))
            self.problem(rule, f"unknown operator {key!r} (use {known} or field: value)")
            return None
        if not self.field(rule, key):
            return None
        stats.leaves += 1
        return True if self.operand(rule, "==", key, value) else None

    def field(self, rule: str, name: object) -> bool:
        if not isinstance(name, str) or not FIELD_NAME.match(name):
            self.problem(rule, f"field {name!r} must match [a-z_][a-z0-9_]* (flat names only)")
            return False
        if len(name) > MAX_FIELD_NAME_CHARS:
            self.problem(rule, f"field {name!r} is longer than {MAX_FIELD_NAME_CHARS} chars")
            return False
        if name in ("id", "sid"):
            self.problem(rule, f"field {name!r} is the core's message/session id")
            return False
        h = field_hash(name)
        if h in RESERVED_HASHES:
            self.problem(rule, f"field {name!r} hashes like {RESERVED_HASHES[h]!r}; rename it")
            return False
        other = self.names_by_hash.setdefault(h, name)
        if other != name:
            self.problem(rule, f"fields {other!r} and {name!r} have the same hash; rename one")
            return False
        return True

    def operand(self, rule: str, op: str, name: str, value: object) -> bool:
        kind = value_kind(value)
        if kind is None:
            self.problem(rule, f"{name}: {_short(value)} is not text, a number or true/false")
            return False
        if kind == "number" and isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            self.problem(rule, f"{name}: {value} does not fit in 64 bits")
            return False
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(rule, f"{name}: {value!r} cannot be written for the core")
            return False
        if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            self.problem(rule, f"{name}: text longer than {MAX_STRING_CHARS} chars")
            return False
        if op in ("$ex", "$nex"):
            return True
        if op == "$mt":
            if not isinstance(value, str):
                self.problem(rule, f"{name}: $mt needs a regex string")
                return False
            if JSON_ESCAPED.search(value):
                self.problem(
                    rule,
                    f"{name}: regex {value!r} has a backslash, quote or control character; "
                    "the core matches JSON text and never sees escapes (use [.] or [0-9])",
                )
                return False
            if not value.isascii():
                self.problem(
                    rule, f"{name}: regex {value!r} is not ASCII; the core's regex never matches it"
                )
                return False
            kind = "text"
        if op in ORDERINGS and isinstance(value, str) and _ORDER_UNSAFE.search(value):
            self.problem(
                rule,
                f"{name}: text order against {value!r} is unreliable: the core compares JSON "
                "text, and a value that is a prefix of text followed by a space, '!', quote, "
                "backslash or control character sorts after it",
            )
            return False
        if op == "$mt" or (op in ORDERINGS and kind == "text"):
            self.text_fields.add(name)
        self.kinds[name].add(kind)
        self.kind_seen.setdefault((name, kind), rule)
        return True

    # -- the network model -----------------------------------------------------------

    def build(self, cond: Mapping[str, Any], parent: int) -> int:
        """Add ``cond`` under ``parent`` as the core's createAlpha does; return its end node."""
        key, value = next(iter(cond.items()))
        if key == "$and":
            node = parent
            for sub in value:
                node = self.build(sub, node)
            return node
        if key == "$or":
            exit_node = self.new_node("($or)")
            for sub in value:
                self.nodes[self.build(sub, parent)].links.append(exit_node)
            return exit_node
        if key in COMPARISONS:
            op = key
            name, operand = next(iter(value.items()))
        else:
            op, name, operand = "==", key, value
        node_key: _Key = (op, name, _json_type(operand), operand)
        table = self.nodes[parent].nex if op == "$nex" else self.nodes[parent].children
        child = table.get(node_key)
        if child is None:
            child = self.new_node(f"{name} {op} {operand!r}")
            table[node_key] = child
            if op == "$nex":
                self.nodes[parent].links.append(child)
        return child

    def new_node(self, label: str) -> int:
        self.nodes.append(_Node(label))
        return len(self.nodes) - 1

    def mixed_kinds(self) -> None:
        for name, kinds in self.kinds.items():
            if len(kinds) > 1:
                used = ", ".join(f"{k} in {self.kind_seen[(name, k)]}" for k in sorted(kinds))
                self.problem(
                    None,
                    f"field {name!r} is compared with more than one kind of value ({used}); "
                    'the core compares mixed kinds as text ("5" == 5), use one kind per field',
                )

    def network(self) -> None:
        for index, node in enumerate(self.nodes):
            where = " -> ".join(self.path_to(index)) if self.crowded(node) else ""
            if len(node.children) > MAX_CONDITIONS_PER_NODE:
                fields = sorted({k[1] for k in node.children})
                self.problem(
                    None,
                    f"{len(node.children)} distinct conditions follow [{where}] (fields "
                    f"{', '.join(fields[:8])}{', ...' if len(fields) > 8 else ''}); the core "
                    f"hangs at 512, at most {MAX_CONDITIONS_PER_NODE}",
                )
            if len(node.links) > MAX_LINKS_PER_NODE:
                self.problem(
                    None,
                    f"{len(node.links)} $nex conditions or $or exits follow [{where}]; the core "
                    f"overflows at 129, at most {MAX_LINKS_PER_NODE}",
                )
            if len(node.rules) > MAX_RULES_PER_CONDITION:
                self.problem(
                    None,
                    f"{len(node.rules)} rules ({', '.join(node.rules[:5])}, ...) end on the same "
                    f"condition [{where}]; the core crashes at 256, "
                    f"at most {MAX_RULES_PER_CONDITION}",
                )
        self.alpha_stack = _stack_bound(self.nodes)
        if self.alpha_stack > MAX_ALPHA_STACK:
            self.problem(
                None,
                f"one fact could match up to {self.alpha_stack} conditions at once; the core "
                f"fails (error 303) past 64, at most {MAX_ALPHA_STACK}: put a shared equality "
                "(such as the scope) first and split wide groups of independent tests",
            )

    @staticmethod
    def crowded(node: _Node) -> bool:
        return (
            len(node.children) > MAX_CONDITIONS_PER_NODE
            or len(node.links) > MAX_LINKS_PER_NODE
            or len(node.rules) > MAX_RULES_PER_CONDITION
        )

    def path_to(self, index: int) -> list[str]:
        """Labels from the start to ``index`` (first parent found), for messages."""
        parents: dict[int, int] = {}
        for i, node in enumerate(self.nodes):
            for child in (*node.children.values(), *node.links):
                parents.setdefault(child, i)
        path: list[str] = []
        while index in parents and len(path) < 12:
            path.append(self.nodes[index].label)
            index = parents[index]
        return list(reversed(path)) or [self.nodes[index].label]


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _stack_bound(nodes: Sequence[_Node]) -> int:
    """Upper bound of the core's alpha stack (64 entries) for any fact.

    Visiting a node pushes every matching child and every ``$nex``/``$or`` link; the
    children wait on the stack while the last one is explored. Equalities on one field
    with distinct values of one kind cannot match together, which keeps the bound tight
    for rules that branch on a field's value.
    """
    memo: dict[int, int] = {}

    def pushes(node: _Node) -> int:
        count = len(node.links)
        equal: dict[tuple[str, str], dict[Any, int]] = defaultdict(lambda: defaultdict(int))
        for op, name, _, value in node.children:
            if op == "==":
                kind = value_kind(value) or "text"
                norm = float(value) if kind == "number" else value
                equal[(name, kind)][norm] += 1
            else:
                count += 1
        return count + sum(max(groups.values()) for groups in equal.values())

    def bound(index: int) -> int:
        if index in memo:
            return memo[index]
        node = nodes[index]
        nexts = [*node.children.values(), *node.links]
        result = 0
        if nexts:
            k = pushes(node)
            result = max(k, k - 1 + max(bound(n) for n in nexts))
        memo[index] = result
        return result

    return bound(0)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
