"""Reloading a changed rules directory: swap only a valid book, keep the old one otherwise."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from cdi_stream.engine import Engine
from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.reload import ReloadResult, RulesReloader
from tests.conftest import RULES_DIR
from tests.engine.scenario import Incident, run


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


class Harness:
    def __init__(self, directory: Path) -> None:
        self.book = RuleBook.from_directory(directory)
        self.engine = Engine(self.book)
        self.results: list[ReloadResult] = []
        self.reloader = RulesReloader(
            directory, self.book, on_swap=self.swap, on_result=self.results.append
        )

    def swap(self, book: RuleBook) -> None:
        self.book = book
        self.engine.use_rules(book)


def retitle(directory: Path, title: str) -> None:
    path = directory / "closure.yaml"
    text = path.read_text()
    old = "title: Crime-related incident closed without a rationale"
    assert old in text
    path.write_text(text.replace(old, f"title: {title}"))


def test_an_unchanged_directory_is_left_alone(rules: Path) -> None:
    h = Harness(rules)
    assert h.reloader.check().outcome == "unchanged"
    assert h.results == []


def test_a_valid_change_is_swapped_in_and_the_old_book_closed(rules: Path) -> None:
    h = Harness(rules)
    old = h.book
    retitle(rules, "CRI closed with no rationale")
    result = h.reloader.check()
    assert result.outcome == "reloaded"
    assert h.book is not old and h.engine.book is h.book
    assert result.content_hash == h.book.content_hash != old.content_hash
    assert all(e._evaluator is None for e in old.editions), "old rulesets freed"
    flags = run(h.book, Incident().reported(0).closed(1, "cri").events, engine=h.engine)
    assert flags.one("cri_without_rationale").rule_title == "CRI closed with no rationale"


def test_an_invalid_change_keeps_the_old_rules_running(
    rules: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(rules)
    old = h.book
    (rules / "closure.yaml").write_text("id: CRI-RATIONALE\ntitle: [unclosed\n")
    with caplog.at_level(logging.ERROR, logger="cdi_stream.rules.reload"):
        result = h.reloader.check()
    assert result.outcome == "failed"
    assert any("closure.yaml" in p for p in result.problems)
    assert "closure.yaml" in caplog.text and old.content_hash in caplog.text
    assert h.book is old and h.engine.book is old
    flags = run(old, Incident().reported(0).closed(1, "cri").events, engine=h.engine)
    assert flags.one("cri_without_rationale")  # the old rules still evaluate
    caplog.clear()
    assert h.reloader.check().outcome == "unchanged", "the same broken content is not retried"
    assert caplog.text == ""
    assert [r.outcome for r in h.results] == ["failed"]


def test_a_fixed_directory_is_picked_up_after_a_failure(rules: Path) -> None:
    h = Harness(rules)
    good = (rules / "closure.yaml").read_text()
    (rules / "closure.yaml").write_text(
        good.replace("finding: cri_without_rationale", "finding: nope")
    )
    assert h.reloader.check().outcome == "failed"
    (rules / "closure.yaml").write_text(good.replace("P3", "P2"))
    assert h.reloader.check().outcome == "reloaded"
    assert [r.outcome for r in h.results] == ["failed", "reloaded"]


def test_a_vanished_directory_is_reported_once(rules: Path) -> None:
    h = Harness(rules)
    shutil.rmtree(rules)
    assert h.reloader.check().outcome == "failed"
    assert h.reloader.check().outcome == "unchanged"
    assert h.engine.book is h.book
