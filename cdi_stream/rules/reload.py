"""Replacing a running worker's rules when its rules directory changes.

Semantics and limits:

* A change is noticed by the directory's content hash (names and bytes of its
  ``.yaml``/``.yml`` entries, see ``loader``), on a poll or on request (SIGHUP in a
  worker).
* A changed directory is used only once two checks in a row, at least
  ``settle_seconds`` (1 s) apart, found the same content: a file caught half-written
  (a writer that has flushed only its first documents, or part of a line) has changed
  again by the next check and is not loaded, let alone swapped in. Only a writer that
  stalls mid-file for longer than that can still be caught; writing elsewhere and
  renaming (as a ConfigMap update does) rules that out. The check that first sees new
  content schedules the confirming check itself on the running event loop, so one
  SIGHUP or poll is enough and the change is in use about a second later; without a
  running loop (tests, tools) the caller's next check confirms it.
* The settled directory is loaded, validated and compiled beside the rules in use; only
  a book that compiled completely replaces them. Anything wrong, including an error
  nobody foresaw, keeps the old rules running: the problems are logged with file and
  rule id, counted as a failed reload, and the same broken content is not retried (or
  logged) again while it stays. Once the directory is back to the rules in use, making
  the same mistake again is reported again.
* The swap happens between two events, on the worker's event loop: every event is
  evaluated wholly under one version. Flags already published keep the edition and
  text they were raised with; an incident's next evaluation uses the new rules.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.errors import RulesError, RuleValidationError, listed
from cdi_stream.rules.loader import content_hash

log = logging.getLogger(__name__)

# "pending": new content seen once, not yet used (it may still be being written).
Outcome = Literal["unchanged", "pending", "reloaded", "failed"]
_UNREADABLE = "unreadable"
SETTLE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ReloadResult:
    outcome: Outcome
    content_hash: str
    problems: tuple[str, ...] = ()


class RulesReloader:
    """Watches one rules directory and hands each valid new book to ``on_swap``.

    ``on_swap`` receives the new book and must stop using the old one before it
    returns; the reloader then closes the old book (its compiled rulesets).
    ``on_result`` hears every reload attempt, for metrics: not the checks that find
    nothing new or content still settling, which are no attempt.
    """

    def __init__(
        self,
        directory: Path,
        current: RuleBook,
        on_swap: Callable[[RuleBook], None],
        on_result: Callable[[ReloadResult], None] | None = None,
        *,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self.directory = directory
        self.current = current
        self.settle_seconds = settle_seconds
        self._on_swap = on_swap
        self._on_result = on_result
        self._failed_hash: str | None = None
        # Content seen by an earlier check and not yet used: its hash and when first seen.
        self._pending: tuple[str, float] | None = None
        self._confirm: asyncio.TimerHandle | None = None

    def check(self) -> ReloadResult:
        """Reload if the directory changed since the rules in use were loaded and the
        change has settled. Never raises: it runs on the worker's event loop, where an
        exception would stop the worker."""
        try:
            return self._check()
        except Exception as exc:  # a defect of ours must not take the worker down
            log.exception("rules check of %s failed unexpectedly", self.directory)
            self._pending = None
            return self._failed(_UNREADABLE, [f"{self.directory}: {type(exc).__name__}: {exc}"])

    def _check(self) -> ReloadResult:
        unreadable: str | None = None
        try:
            found = content_hash(self.directory)
        except OSError as exc:
            found, unreadable = _UNREADABLE, f"{self.directory}: {exc}"
        if found == self.current.content_hash:
            # Back to the rules in use: a failure seen before is forgotten, so the same
            # bad change made again is reported again.
            self._failed_hash = self._pending = None
            return ReloadResult("unchanged", found)
        if found == self._failed_hash:
            self._pending = None
            return ReloadResult("unchanged", found)
        now = time.monotonic()
        if self._pending is None or self._pending[0] != found:
            self._pending = (found, now)
            self._schedule_confirmation(self.settle_seconds)
            return ReloadResult("pending", found)
        waited = now - self._pending[1]
        if waited < self.settle_seconds:
            self._schedule_confirmation(self.settle_seconds - waited)
            return ReloadResult("pending", found)
        self._pending = None
        if unreadable is not None:
            return self._failed(found, [unreadable])
        try:
            book = RuleBook.from_directory(self.directory)
        except RuleValidationError as exc:
            return self._failed(found, [str(p) for p in exc.problems])
        except (RulesError, OSError) as exc:
            return self._failed(found, [str(exc)])
        except Exception as exc:  # a defect of the loader: still only a failed reload
            log.exception("loading the rules in %s failed unexpectedly", self.directory)
            return self._failed(found, [f"{self.directory}: {type(exc).__name__}: {exc}"])
        if book.content_hash != found:
            # Changed again while it was being loaded: what was loaded never settled.
            book.close()
            self._pending = (book.content_hash, time.monotonic())
            self._schedule_confirmation(self.settle_seconds)
            return ReloadResult("pending", book.content_hash)
        old, self.current = self.current, book
        self._on_swap(book)
        old.close()
        self._failed_hash = None
        log.info(
            "rules reloaded from %s: content hash %s -> %s",
            self.directory,
            old.content_hash,
            book.content_hash,
        )
        return self._report(ReloadResult("reloaded", book.content_hash))

    def _schedule_confirmation(self, delay: float) -> None:
        """Check again after ``delay`` on the running event loop, if there is one; a
        confirmation scheduled earlier is replaced, so at most one is ever waiting."""
        if self._confirm is not None:
            self._confirm.cancel()
            self._confirm = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._confirm = loop.call_later(delay, self.check)

    def _failed(self, found: str, problems: list[str]) -> ReloadResult:
        self._failed_hash = found
        log.error(
            "rules in %s not reloaded; the rules with hash %s stay in use:\n  %s",
            self.directory,
            self.current.content_hash,
            "\n  ".join(listed(problems, len(problems))),
        )
        return self._report(ReloadResult("failed", found, tuple(problems)))

    def _report(self, result: ReloadResult) -> ReloadResult:
        if self._on_result is not None:
            self._on_result(result)
        return result
