"""The console script's entry point."""

from __future__ import annotations

import builtins
import sys
from typing import Any

import pytest

from cdi_stream import entry


def test_ctrl_c_while_the_command_line_loads_exits_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_import = builtins.__import__

    def interrupted(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "cdi_stream.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "cdi_stream.cli", raising=False)
    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as caught:
        entry.main()
    assert caught.value.code == 130


def test_the_entry_point_runs_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["cdi-stream", "--help"])
    with pytest.raises(SystemExit) as caught:
        entry.main()
    assert caught.value.code == 0
