"""The wheel carries what an installed package needs besides its code: the rules and
the offence table. Without them ``pip install cdi-stream`` gives a worker with nothing
to evaluate."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_the_rules_and_the_offence_table(tmp_path: Path) -> None:
    source = tmp_path / "src"  # built from a copy, so no build files land in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.so")
    for name in ("cdi_stream", "rules"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*build, "--wheel-dir", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("cdi_stream-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    rules = {p.name for p in (ROOT / "rules").glob("*.yaml")}
    shipped = {n.rsplit("/", 1)[1] for n in names if "/data/share/cdi-stream/rules/" in n}
    assert rules and shipped == rules
    assert "cdi_stream/data/offences.csv" in names
    assert "cdi_stream/py.typed" in names
