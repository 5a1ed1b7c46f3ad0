"""Replacing a running worker's rules when its rules directory changes.

Semantics and limits:

* A change is noticed by the directory's content hash (file names and bytes of its
  ``.yaml``/``.yml`` files), on a poll or on request (SIGHUP in a worker).
* The new directory is loaded, validated and compiled beside the rules in use; only a
  book that compiled completely replaces them. Anything wrong keeps the old rules
  running: the problems are logged with file and rule id, counted as a failed reload,
  and the same broken content is not retried (or logged) again until it changes.
* The swap happens between two events, on the worker's event loop: every event is
  evaluated wholly under one version. Flags already published keep the edition and
  text they were raised with; an incident's next evaluation uses the new rules.
* A file caught half-written fails validation and is retried once it changes again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cdi_stream.rules.book import RuleBook
from cdi_stream.rules.errors import RulesError, RuleValidationError
from cdi_stream.rules.loader import content_hash

log = logging.getLogger(__name__)

Outcome = Literal["unchanged", "reloaded", "failed"]
_UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class ReloadResult:
    outcome: Outcome
    content_hash: str
    problems: tuple[str, ...] = ()


class RulesReloader:
    """Watches one rules directory and hands each valid new book to ``on_swap``.

    ``on_swap`` receives the new book and must stop using the old one before it
    returns; the reloader then closes the old book (its compiled rulesets).
    ``on_result`` hears every attempt, for metrics.
    """

    def __init__(
        self,
        directory: Path,
        current: RuleBook,
        on_swap: Callable[[RuleBook], None],
        on_result: Callable[[ReloadResult], None] | None = None,
    ) -> None:
        self.directory = directory
        self.current = current
        self._on_swap = on_swap
        self._on_result = on_result
        self._failed_hash: str | None = None

    def check(self) -> ReloadResult:
        """Reload if the directory changed since the rules in use were loaded."""
        try:
            found = content_hash(self.directory)
        except OSError as exc:
            if self._failed_hash == _UNREADABLE:
                return ReloadResult("unchanged", _UNREADABLE)
            return self._failed(_UNREADABLE, [f"{self.directory}: {exc}"])
        if found in (self.current.content_hash, self._failed_hash):
            return ReloadResult("unchanged", found)
        try:
            book = RuleBook.from_directory(self.directory)
        except RuleValidationError as exc:
            return self._failed(found, [str(p) for p in exc.problems])
        except (RulesError, OSError) as exc:
            return self._failed(found, [str(exc)])
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

    def _failed(self, found: str, problems: list[str]) -> ReloadResult:
        self._failed_hash = found
        log.error(
            "rules in %s not reloaded; the rules with hash %s stay in use:\n  %s",
            self.directory,
            self.current.content_hash,
            "\n  ".join(problems),
        )
        return self._report(ReloadResult("failed", found, tuple(problems)))

    def _report(self, result: ReloadResult) -> ReloadResult:
        if self._on_result is not None:
            self._on_result(result)
        return result
