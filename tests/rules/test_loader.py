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
    assert any("keep its finding and scope" in p for p in found), found


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
