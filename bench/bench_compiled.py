"""Replay with the engine compiled by mypyc, against the same engine interpreted.

The package is strictly typed, so mypyc compiles the engine modules unchanged. This
script copies the package to a scratch directory, compiles ``cdi_stream/engine/*.py``
there (the source tree is never touched: compiled modules beside the sources would
shadow later edits), then replays one simulated stream with each build, alternating
in fresh processes. Prints events per second for each and whether the flag output is
byte-identical; nothing is asserted. Needs a C compiler (mypyc comes with mypy).

    python bench/bench_compiled.py [--incidents 20000] [--seed 1] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cdi_stream
from cdi_stream.rules.loader import default_rules_dir
from cdi_stream.simulate import SimConfig, write_jsonl

SOURCE = Path(cdi_stream.__file__).resolve().parent

# Run in a fresh interpreter whose ``cdi_stream`` comes from the first entry of
# PYTHONPATH; prints events/s and the digest of the flag output as JSON.
TIMED_REPLAY = """
import hashlib, io, json, sys, time
# A development install maps the package to the source tree ahead of PYTHONPATH.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
import cdi_stream
from cdi_stream.replay import replay
from cdi_stream.rules.book import RuleBook
from cdi_stream.runtime import tune_gc
lines = open(sys.argv[1], "rb").read().splitlines()
with RuleBook.from_directory(sys.argv[2]) as book:
    tune_gc()
    out = io.BytesIO()
    t = time.perf_counter()
    replay(lines, book, out=out)
    seconds = time.perf_counter() - t
digest = hashlib.sha256(out.getvalue()).hexdigest()
module = cdi_stream.engine.core.__file__
print(json.dumps({"rate": len(lines) / seconds, "sha256": digest, "module": module}))
"""


def compiled_copy(scratch: Path) -> tuple[Path, float]:
    """A copy of the package with its engine modules compiled; the build's seconds."""
    root = scratch / "compiled"
    shutil.copytree(SOURCE, root / "cdi_stream", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SOURCE.parent / "pyproject.toml", root)  # the type-checker settings
    engine = sorted(str(p.relative_to(root)) for p in (root / "cdi_stream/engine").glob("*.py"))
    started = time.perf_counter()
    build = subprocess.run(
        [str(Path(sys.executable).with_name("mypyc")), *engine],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        raise RuntimeError(f"mypyc failed:\n{build.stdout}\n{build.stderr}")
    return root, time.perf_counter() - started


def timed_replay(events: Path, package_root: Path) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(package_root))
    done = subprocess.run(
        [sys.executable, "-c", TIMED_REPLAY, str(events), str(default_rules_dir())],
        env=env,
        cwd=events.parent,  # ``-c`` puts the working directory first on the path
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"replay failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cdi-bench-compiled-") as tmp:
        scratch = Path(tmp)
        events = scratch / "events.jsonl"
        write_jsonl(SimConfig(seed=args.seed, incidents=args.incidents), events)
        count = sum(1 for _ in events.open("rb"))
        compiled, build_seconds = compiled_copy(scratch)
        print(f"{count:,} events; engine compiled in {build_seconds:.0f} s")
        builds = {"interpreted": SOURCE.parent, "compiled": compiled}
        rates: dict[str, list[float]] = {name: [] for name in builds}
        digests: dict[str, set[object]] = {name: set() for name in builds}
        for pair in range(1, args.pairs + 1):
            for name, root in builds.items():
                result = timed_replay(events, root)
                if name == "compiled" and not str(result["module"]).endswith(".so"):
                    raise RuntimeError(f"the compiled build ran {result['module']}")
                rate = float(str(result["rate"]))
                rates[name].append(rate)
                digests[name].add(result["sha256"])
                print(f"[{pair}] {name}: {rate:,.0f} events/s")
    best = {name: max(r) for name, r in rates.items()}
    identical = len(digests["interpreted"] | digests["compiled"]) == 1
    print()
    print("=" * 72)
    for name, r in rates.items():
        runs = ", ".join(f"{x:,.0f}" for x in r)
        print(f"{name:<12}   best {best[name]:,.0f} events/s (runs {runs})")
    print(f"speed-up       {best['compiled'] / best['interpreted']:.2f}x (best against best)")
    print(f"flag output    {'byte-identical' if identical else 'DIFFERS'} across every run")
    print("=" * 72)


if __name__ == "__main__":
    main()
