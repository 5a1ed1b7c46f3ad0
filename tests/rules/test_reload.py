"""Reloading a changed rules directory: swap only a valid book, keep the old one otherwise."""

from __future__ import annotations

import asyncio
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
    def __init__(self, directory: Path, settle_seconds: float = 0.0) -> None:
        self.book = RuleBook.from_directory(directory)
        self.engine = Engine(self.book)
        self.results: list[ReloadResult] = []
        self.reloader = RulesReloader(
            directory,
            self.book,
            on_swap=self.swap,
            on_result=self.results.append,
            settle_seconds=settle_seconds,
        )

    def swap(self, book: RuleBook) -> None:
        self.book = book
        self.engine.use_rules(book)

    def check(self) -> ReloadResult:
        """Two checks in a row, as a poll and the confirmation that the change settled."""
        first = self.reloader.check()
        if first.outcome != "pending":
            return first
        return self.reloader.check()


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
    result = h.check()
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
        result = h.check()
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
    assert h.check().outcome == "failed"
    (rules / "closure.yaml").write_text(good.replace("P3", "P2"))
    assert h.check().outcome == "reloaded"
    assert [r.outcome for r in h.results] == ["failed", "reloaded"]


def test_a_vanished_directory_is_reported_once(rules: Path) -> None:
    h = Harness(rules)
    shutil.rmtree(rules)
    assert h.check().outcome == "failed"
    assert h.reloader.check().outcome == "unchanged"
    assert h.engine.book is h.book


@pytest.mark.parametrize(
    "error", [OverflowError("date value out of range"), RecursionError("too deep")]
)
def test_an_unexpected_error_while_loading_is_a_failed_reload(
    rules: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    h = Harness(rules)
    old = h.book

    def broken(directory: Path | str) -> RuleBook:
        raise error

    monkeypatch.setattr(RuleBook, "from_directory", broken)
    retitle(rules, "Anything")
    with caplog.at_level(logging.ERROR, logger="cdi_stream.rules.reload"):
        result = h.check()  # must not raise: it runs on the worker's event loop
    assert result.outcome == "failed"
    assert type(error).__name__ in result.problems[0]
    assert "not reloaded" in caplog.text
    assert [r.outcome for r in h.results] == ["failed"]
    assert h.book is old and h.engine.book is old


def test_the_same_bad_change_after_a_revert_is_reported_again(rules: Path) -> None:
    h = Harness(rules)
    good = (rules / "closure.yaml").read_text()
    bad = good.replace("finding: cri_without_rationale", "finding: nope")
    (rules / "closure.yaml").write_text(bad)
    assert h.check().outcome == "failed"
    (rules / "closure.yaml").write_text(good)
    assert h.check().outcome == "unchanged"
    (rules / "closure.yaml").write_text(bad)
    assert h.check().outcome == "failed"
    assert [r.outcome for r in h.results] == ["failed", "failed"]


def test_a_change_is_used_only_once_two_checks_see_the_same_content(rules: Path) -> None:
    h = Harness(rules, settle_seconds=0.0)
    old = h.book
    text = (RULES_DIR / "deadlines.yaml").read_text()
    deadlines = rules / "deadlines.yaml"
    # The writer has flushed the first document only: valid YAML, one rule short.
    deadlines.write_text(text[: text.index("---")])
    assert h.reloader.check().outcome == "pending"
    deadlines.write_text(text)  # finished, with a second file changed as well
    retitle(rules, "CRI closed with no rationale")
    assert h.reloader.check().outcome == "pending", "changed since the last check"
    assert h.book is old and h.results == []
    assert h.reloader.check().outcome == "reloaded"
    ids = {r.id for e in h.engine.book.editions for r in e.rules}
    assert "NCRS-24H-LATE" in ids


def test_a_change_waits_for_the_settle_time(rules: Path) -> None:
    h = Harness(rules, settle_seconds=60.0)
    retitle(rules, "CRI closed with no rationale")
    assert h.reloader.check().outcome == "pending"
    assert h.reloader.check().outcome == "pending", "seen twice, but not a minute apart"
    assert h.results == []


def test_one_check_on_the_event_loop_is_enough(rules: Path) -> None:
    h = Harness(rules, settle_seconds=0.05)
    retitle(rules, "CRI closed with no rationale")

    async def signalled() -> None:
        assert h.reloader.check().outcome == "pending"
        for _ in range(100):  # the reloader confirms the change itself
            await asyncio.sleep(0.02)
            if h.results:
                break

    asyncio.run(signalled())
    assert [r.outcome for r in h.results] == ["reloaded"]
    assert h.engine.book is h.book and h.book.content_hash == h.reloader.current.content_hash
