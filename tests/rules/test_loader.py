"""Rule files: every mistake is reported with its file and rule id, none reaches the engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cdi_stream.rules import loader
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.errors import RuleValidationError
from cdi_stream.rules.loader import load_rules
from tests.findings import ALL_FINDINGS

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"

GOOD = """
id: TEST-RULE
title: A test rule
finding: crime_not_recorded
priority: P3
reference: test
effective_from: 2000-01-01
scope: subject
when:
  recordable: true
  breach: due
event_time: breach_at
explanation: Subject {subject_label} on {incident_id} was not recorded by {due_at}.
"""


def rules_dir(tmp_path: Path, *docs: str, name: str = "extra.yaml") -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    shutil.copy(RULES / "editions.yaml", target / "editions.yaml")
    (target / name).write_text("\n---\n".join(docs))
    return target


def problems(directory: Path) -> list[str]:
    with pytest.raises(RuleValidationError) as caught:
        load_rules(directory)
    return [str(p) for p in caught.value.problems]


def test_shipped_rules_load_and_compile() -> None:
    source = load_rules(RULES)
    assert {r.doc.finding for r in source.rules} == ALL_FINDINGS
    with RuleBook(source) as book:
        conduct = [
            e.id for e in book.editions if any(r.id == "CONDUCT-ADDITIONAL" for r in e.rules)
        ]
        assert conduct == ["2018-04", "2020-04"]
        assert len(source.content_hash) == 16


def test_good_rule_passes(tmp_path: Path) -> None:
    source = load_rules(rules_dir(tmp_path, GOOD))
    assert [r.doc.id for r in source.rules] == ["TEST-RULE"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("recordable: true", "recordabel: true"), "unknown fact 'recordabel'"),
        (("recordable: true", "recordable: yes please"), "recordable is true/false"),
        (("breach: due", "breach: soon"), "'soon' is not a value of breach"),
        (("breach: due", "breach: {like: due}"), "unknown operator 'like'"),
        (("breach: due", "breach: {lt: due}"), "ordering operators need a numeric fact"),
        (("{due_at}", "{deadline}"), "unknown placeholder {deadline}"),
        (("{due_at}", "{due_at!r}"), "may not carry a format spec"),
        (("event_time: breach_at", "event_time: principal_code"), "is not a time of scope"),
        (("finding: crime_not_recorded", "finding: bad_finding"), "finding"),
        (("priority: P3", "priority: P9"), "priority"),
        (
            ("effective_from: 2000-01-01", "effective_from: 2019-01-01"),
            "is not the start of an edition",
        ),
        (("scope: subject", "scope: subject\nsurprise: 1"), "surprise"),
        (("id: TEST-RULE", "id: test rule"), "id"),
    ],
)
def test_each_mistake_is_reported_with_file_and_rule(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    doc = GOOD.replace(*change)
    found = problems(rules_dir(tmp_path, doc))
    assert any(message in p for p in found), found
    assert all("extra.yaml" in p for p in found), found


def test_rule_id_named_in_problem(tmp_path: Path) -> None:
    found = problems(rules_dir(tmp_path, GOOD.replace("recordable: true", "nope: 1")))
    assert found[0].startswith(str(tmp_path / "rules" / "extra.yaml") + ": TEST-RULE: ")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    found = problems(rules_dir(tmp_path, "id: X\nwhen: [unclosed\n"))
    assert any("YAML syntax error at line" in p for p in found), found


def test_overlapping_versions_of_one_id(tmp_path: Path) -> None:
    later = GOOD.replace("effective_from: 2000-01-01", "effective_from: 2018-04-01")
    found = problems(rules_dir(tmp_path, GOOD, later))
    assert any("periods of this rule id overlap" in p for p in found), found


def test_versions_must_keep_finding_and_scope(tmp_path: Path) -> None:
    first = GOOD.replace("scope: subject", "scope: subject\neffective_to: 2018-03-31")
    second = GOOD.replace("effective_from: 2000-01-01", "effective_from: 2018-04-01").replace(
        "finding: crime_not_recorded", "finding: late_recording"
    )
    found = problems(rules_dir(tmp_path, first, second))
    assert any("keep its finding, scope and raise_status (finding differ)" in p for p in found)


def test_versions_must_keep_their_raise_status(tmp_path: Path) -> None:
    """The engine looks a rule's raise status up by id: a later version raising as
    resolved used to decide, for every edition, that such flags are never withdrawn."""
    first = GOOD.replace("scope: subject", "scope: subject\neffective_to: 2018-03-31")
    second = GOOD.replace("effective_from: 2000-01-01", "effective_from: 2018-04-01")
    second += "raise_status: resolved\n"
    found = problems(rules_dir(tmp_path, first, second))
    assert any("(raise_status differ)" in p for p in found), found


def test_effective_to_must_end_before_an_edition(tmp_path: Path) -> None:
    doc = GOOD.replace("scope: subject", "scope: subject\neffective_to: 2018-06-01")
    assert any("day before an edition starts" in p for p in problems(rules_dir(tmp_path, doc)))


def test_missing_editions_file(tmp_path: Path) -> None:
    target = rules_dir(tmp_path, GOOD)
    (target / "editions.yaml").unlink()
    assert any("missing editions file" in p for p in problems(target))


def test_not_a_directory(tmp_path: Path) -> None:
    assert any("not a directory" in p for p in problems(tmp_path / "nowhere"))


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    bad1 = GOOD.replace("recordable: true", "nope: 1")
    bad2 = GOOD.replace("id: TEST-RULE", "id: OTHER").replace("{due_at}", "{nothing}")
    found = problems(rules_dir(tmp_path, bad1, bad2))
    assert any("TEST-RULE" in p for p in found) and any("OTHER" in p for p in found)


def test_an_empty_rule_file_is_a_problem_not_fewer_rules(tmp_path: Path) -> None:
    target = rules_dir(tmp_path, GOOD)
    (target / "truncated.yaml").write_text("# half written\n")
    found = problems(target)
    assert any("truncated.yaml" in p and "no YAML document" in p for p in found)


def test_an_empty_editions_file_is_not_called_missing(tmp_path: Path) -> None:
    target = rules_dir(tmp_path, GOOD)
    (target / "editions.yaml").write_text("")
    found = problems(target)
    assert any("exactly one YAML document" in p for p in found)
    assert not any("missing editions file" in p for p in found)


def test_shipped_rules_come_from_the_checkout_then_the_installed_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert loader.default_rules_dir() == RULES
    installed = tmp_path / "share" / "cdi-stream" / "rules"
    shutil.copytree(RULES, installed)
    monkeypatch.setattr(loader, "SOURCE_RULES", tmp_path / "no-checkout")
    monkeypatch.setattr(loader, "INSTALLED_RULES", installed)
    assert loader.default_rules_dir() == installed
    monkeypatch.setattr(loader, "INSTALLED_RULES", tmp_path / "not-installed")
    assert loader.default_rules_dir() == Path("rules")


def test_the_configured_rules_directory_wins_over_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdi_stream.settings import load_settings

    monkeypatch.delenv("CDI_RULES_DIR", raising=False)
    assert load_settings().rules_directory() == RULES
    monkeypatch.setenv("CDI_RULES_DIR", "")
    assert load_settings().rules_directory() == RULES
    monkeypatch.setenv("CDI_RULES_DIR", str(tmp_path))
    assert load_settings().rules_directory() == tmp_path


CLOSURE = """
id: TEST-CLOSURE
title: A test rule
finding: cri_without_rationale
priority: P3
reference: test
effective_from: 2000-01-01
scope: closure
when:
  closure_type: cri
event_time: at
explanation: Incident {incident_id} closed as cri, test rule.
"""

CANCEL = CLOSURE.replace("scope: closure", "scope: cancellation").replace(
    "closure_type: cri", "reason_valid: false"
)


def test_a_cancellation_reason_the_engine_never_reports_is_refused(tmp_path: Path) -> None:
    """The engine reports a reason as C1..C5 or ``other``; a rule on ``C6`` passed the
    check and could never fire."""
    found = problems(rules_dir(tmp_path, CANCEL.replace("reason_valid: false", "reason: C6")))
    assert found == [
        f"{tmp_path / 'rules' / 'extra.yaml'}: TEST-CLOSURE: when.reason: 'C6' is not a value "
        "of reason (C1, C2, C3, C4, C5, other)"
    ]


def test_an_effective_to_on_the_last_date_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    doc = GOOD.replace("scope: subject", "scope: subject\neffective_to: 9999-12-31")
    found = problems(rules_dir(tmp_path, doc))
    assert any("extra.yaml: TEST-RULE: effective_to 9999-12-31 is not the day" in p for p in found)


@pytest.mark.parametrize("nested", ["[" * 3000 + "]" * 3000, "{a: " * 3000 + "1" + "}" * 3000])
def test_deeply_nested_yaml_is_a_problem_not_a_crash(tmp_path: Path, nested: str) -> None:
    found = problems(rules_dir(tmp_path, GOOD + f"resolved_when: {nested}\n"))
    assert found == [f"{tmp_path / 'rules' / 'extra.yaml'}: line 14: nested deeper than 64 levels"]


def test_yaml_aliases_are_refused_before_they_can_expand(tmp_path: Path) -> None:
    when = (
        "when:\n  all:\n    - &x {closure_type: cri}\n"
        "    - &a1 {all: [" + ", ".join(["*x"] * 2000) + "]}\n"
        "    - &a2 {all: [" + ", ".join(["*a1"] * 2000) + "]}\n"
        "    - {all: [" + ", ".join(["*a2"] * 2000) + "]}\n"
    )
    found = problems(rules_dir(tmp_path, CLOSURE.replace("when:\n  closure_type: cri\n", when)))
    assert len(found) == 1 and "extra.yaml: line 11: YAML anchors and aliases" in found[0]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("  closure_type: cri\n", "  closure_type: cri\n  closure_type: non_crime\n"), 11),
        (("priority: P3\n", "priority: P3\npriority: P1\n"), 6),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path: Path, change: tuple[str, str], where: int) -> None:
    found = problems(rules_dir(tmp_path, CLOSURE.replace(*change)))
    assert len(found) == 1 and f"extra.yaml: line {where}: key " in found[0], found
    assert "given twice (first at line" in found[0]


@pytest.mark.parametrize("gate", ["all", "any"])
def test_long_all_and_any_lists_are_refused_before_they_are_walked(
    tmp_path: Path, gate: str
) -> None:
    items = ", ".join(["{closure_type: cri}"] * 5000)
    doc = CLOSURE.replace("  closure_type: cri\n", f"  {gate}: [{items}]\n")
    found = problems(rules_dir(tmp_path, doc))
    assert found == [
        f"{tmp_path / 'rules' / 'extra.yaml'}: TEST-CLOSURE: when.{gate}: 5000 conditions; "
        "at most 32"
    ]


def in_list(count: int) -> str:
    values = ("C1", "C2", "C3", "C4", "C5", "other")  # every value the fact takes
    return CANCEL.replace(
        "reason_valid: false",
        "reason: {in: [" + ", ".join(values[i % len(values)] for i in range(count)) + "]}",
    )


def nested_any(levels: int) -> str:
    when: str = '{"closure_type": "cri"}'
    for _ in range(levels):
        when = f'{{"any": [{when}, {{"has_rationale": false}}], "closure_type": "cri"}}'
    return CLOSURE.replace("when:\n  closure_type: cri\n", f"when: {when}\n")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (in_list(32), "when.reason.in: must be a list of 1 to 31 values"),
        (nested_any(4), "when: groups nested 8 deep; at most 7"),
    ],
    ids=["in-32", "any-4-deep"],
)
def test_conditions_the_core_cannot_take_are_refused_in_the_authors_terms(
    tmp_path: Path, doc: str, message: str
) -> None:
    found = problems(rules_dir(tmp_path, doc))
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'rules' / 'extra.yaml'}: TEST-CLOSURE: {message}")


@pytest.mark.parametrize("doc", [in_list(31), nested_any(3)], ids=["in-31", "any-3-deep"])
def test_conditions_the_checker_accepts_compile(tmp_path: Path, doc: str) -> None:
    with RuleBook.from_directory(rules_dir(tmp_path, doc)) as book:
        assert any(r.id == "TEST-CLOSURE" for e in book.editions for r in e.rules)


def test_a_problem_only_the_engine_check_finds_names_the_rule_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdi_stream.rules import limits

    # A limit the condition checker does not know, as if the core's model had changed.
    monkeypatch.setattr(limits, "MAX_CONDITIONS_PER_PATTERN", 2)
    doc = CLOSURE + "resolved_when:\n  closure_type: crime\n  has_rationale: true\n"
    target = rules_dir(tmp_path, doc)
    with pytest.raises(RuleValidationError) as caught:
        RuleBook.from_directory(target).close()
    mine = [p for p in caught.value.problems if p.rule_id == "TEST-CLOSURE"]
    assert len(mine) == 1, [str(p) for p in caught.value.problems]
    assert mine[0].file == str(target / "extra.yaml")
    assert mine[0].message.startswith("resolved_when: 3 conditions; at most 2 (editions ")


@pytest.mark.parametrize("how", ["broken_symlink", "directory", "fifo"])
def test_a_yaml_entry_that_is_not_a_readable_file_is_reported(tmp_path: Path, how: str) -> None:
    import os

    target = rules_dir(tmp_path, GOOD)
    entry = target / "deadlines.yaml"
    if how == "broken_symlink":
        entry.symlink_to(tmp_path / "nowhere.yaml")
    elif how == "directory":
        entry.mkdir()
    else:
        os.mkfifo(entry)  # never opened: reading it would block
    found = problems(target)
    assert len(found) == 1 and found[0].startswith(f"{entry}: "), found


def test_an_upper_case_suffix_is_read_and_hidden_files_are_skipped(tmp_path: Path) -> None:
    target = rules_dir(tmp_path, GOOD, name="extra.YAML")
    (target / "._extra.yaml").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (target / ".other.yml").write_text(GOOD)  # would be a duplicate id if read
    source = load_rules(target)
    assert [(r.doc.id, Path(r.file).name) for r in source.rules] == [("TEST-RULE", "extra.YAML")]
    assert source.content_hash == loader.content_hash(target)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('expected: {"' + "k" * 65 + '": closure_type}\n', "at most 64 characters"),
        ('observed: {"": closure_type}\n', "expected: key '': "),
        (
            "expected: {" + ", ".join(f"k{i}: closure_type" for i in range(33)) + "}\n",
            "expected: Dictionary should have at most 32 items",
        ),
    ],
    ids=["long-key", "empty-key", "33-keys"],
)
def test_flag_keys_are_bounded_as_the_flag_contract_bounds_them(
    tmp_path: Path, extra: str, message: str
) -> None:
    found = problems(rules_dir(tmp_path, CLOSURE + extra))
    assert len(found) == 1 and "extra.yaml: TEST-CLOSURE: " in found[0], found
    assert message.replace("expected", extra.split(":")[0]) in found[0], found


def test_an_unquoted_no_where_text_is_expected_gets_a_hint(tmp_path: Path) -> None:
    doc = CANCEL.replace("reason_valid: false", "victim_informed: no")
    found = problems(rules_dir(tmp_path, doc, doc.replace("title: A test rule", "title: no")))
    assert len(found) == 2, found
    assert all("YAML reads an unquoted yes/no/on/off as false: quote the text" in p for p in found)


def test_a_python_tag_is_an_unsafe_tag_not_a_syntax_error(tmp_path: Path) -> None:
    found = problems(rules_dir(tmp_path, GOOD + "verify: !!python/object/apply:os.system [id]\n"))
    assert len(found) == 1 and "line 14: unsafe tag !!python/object/apply:os.system" in found[0]


def test_an_overlapping_stray_copy_is_named(tmp_path: Path) -> None:
    target = rules_dir(tmp_path, GOOD)
    (target / "extra copy.yaml").write_text(GOOD)
    found = problems(target)
    assert any(f"overlap with the version in {target / 'extra copy.yaml'}" in p for p in found)


def test_the_readme_example_rule_is_the_shipped_rule() -> None:
    """Regression: the README showed a warning rule that the shipped file had changed."""
    import yaml

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```yaml\nid: NCRS-24H-WARN\n", 1)[1].split("```", 1)[0]
    shown = yaml.safe_load("id: NCRS-24H-WARN\n" + block)
    shipped = next(
        doc
        for path in sorted(RULES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("id") == shown["id"]
    )
    assert shown == shipped  # whole, so that a reader can copy it and have a valid rule


def test_a_file_name_that_is_not_utf8_is_read_like_any_other(tmp_path: Path) -> None:
    """Hashing the directory encoded file names as UTF-8, so such a name crashed
    ``rules check`` and made a worker log a traceback on every reload poll."""
    import os

    target = rules_dir(tmp_path, GOOD)
    (target / "extra.yaml").rename(target / os.fsdecode(b"extra\xff.yaml"))
    with RuleBook.from_directory(target) as book:
        assert any(r.id == "TEST-RULE" for e in book.editions for r in e.rules)


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        ('["8Q", "8LL", "zzz"]', "not Home Office offence codes: '8LL', 'zzz'"),
        ('["8Q", "8Q"]', "a code is listed twice"),
        ("[]", "List should have at least 1 item"),
    ],
)
def test_conduct_codes_must_be_offence_codes(tmp_path: Path, codes: str, message: str) -> None:
    """A typo in ``conduct_codes`` used to pass and silently take a conduct crime out of
    the 2018-2023 rules."""
    target = rules_dir(tmp_path, GOOD)
    editions = target / "editions.yaml"
    text = editions.read_text()
    assert "conduct_codes:" in text
    lines = [
        f"conduct_codes: {codes}" if line.startswith("conduct_codes:") else line
        for line in text.splitlines()
    ]
    editions.write_text("\n".join(lines) + "\n")
    found = problems(target)
    assert any(p.startswith(f"{editions}: conduct_codes: ") and message in p for p in found), found
    assert not any("Value error" in p for p in found)


@pytest.mark.parametrize(
    "value", ["946684800", "2000-01-01T00:00:00+05:00", '"1 Jan 2000"', "true"]
)
def test_a_date_that_is_not_a_calendar_date_is_refused(tmp_path: Path, value: str) -> None:
    """A number passed as seconds since 1970 and a date-time with an offset passed as
    its date, so a typo moved a rule's period without a word."""
    doc = GOOD.replace("effective_from: 2000-01-01", f"effective_from: {value}")
    found = problems(rules_dir(tmp_path, doc))
    assert any("TEST-RULE: effective_from: " in p and "a date such as" in p for p in found), found


def test_a_quoted_date_is_a_date(tmp_path: Path) -> None:
    doc = GOOD.replace("effective_from: 2000-01-01", 'effective_from: "2000-01-01"')
    assert "TEST-RULE" in {r.doc.id for r in load_rules(rules_dir(tmp_path, doc)).rules}


def test_a_due_at_must_be_a_time_of_the_scope(tmp_path: Path) -> None:
    found = problems(rules_dir(tmp_path, GOOD + "due_at: principal_code\n"))
    assert any(
        "TEST-RULE: due_at: 'principal_code' is not a time of scope subject" in p for p in found
    )


def test_a_file_of_thousands_of_documents_is_refused_at_once(tmp_path: Path) -> None:
    """Each of 170,000 one-line documents used to be checked and reported, taking
    nearly a minute (and a reload held its worker up that long)."""
    for docs in (["1"] * 5000, [""] * 5000 + [GOOD]):  # empty documents count too
        found = problems(rules_dir(tmp_path, *docs))
        assert found == [
            f"{tmp_path / 'rules' / 'extra.yaml'}: more than 200 documents in one file"
        ]
        shutil.rmtree(tmp_path / "rules")


def test_problems_are_listed_up_to_a_limit() -> None:
    from cdi_stream.rules.errors import RuleProblem

    error = RuleValidationError(RuleProblem("f.yaml", f"R{i}", "wrong") for i in range(150))
    shown = error.listed()
    assert len(shown) == 101
    assert shown[0] == "f.yaml: R0: wrong"
    assert shown[-1] == "... and 50 more"
    assert error.listed(200)[-1] == "f.yaml: R149: wrong"


def test_an_edition_with_no_rule_in_force_names_the_editions_file(tmp_path: Path) -> None:
    """It was refused by the compiler as "there are no rules", against the directory."""
    target = rules_dir(tmp_path, GOOD)
    editions = target / "editions.yaml"
    editions.write_text(
        editions.read_text().replace(
            "editions:\n",
            "editions:\n  - id: pre-2000\n    effective_from: 1990-01-01\n"
            "    title: Before the rules\n",
            1,
        )
    )
    found = problems(target)
    assert found == [
        f"{editions}: edition pre-2000 (from 1990-01-01) has no rule in force; start it "
        "where rules apply, or give rules an effective_from of 1990-01-01"
    ]
