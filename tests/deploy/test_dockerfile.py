"""deploy/Dockerfile and .dockerignore, read as text: a multi-stage build whose final
stage has no compiler and runs the worker as a non-root user."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field

import pytest

from tests.deploy.support import DEPLOY, METRICS_PORT, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPILERS = ("gcc", "g++", "make", "build-essential", "clang", "cc")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    result = []
    for text in logical:
        keyword, _, args = text.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def stages() -> list[Stage]:
    args: dict[str, str] = {}
    found: list[Stage] = []
    for keyword, value in instructions():
        if keyword == "ARG" and not found:
            arg, _, default = value.partition("=")
            args[arg] = default
        elif keyword == "FROM":
            parts = value.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            stage = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            found.append(Stage(base, stage))
        else:
            assert found, f"{keyword} before the first FROM"
            found[-1].instructions.append((keyword, value))
    return found


def apt_packages(stage: Stage) -> set[str]:
    packages: set[str] = set()
    for command in stage.all("RUN"):
        for match in re.finditer(r"apt-get install ([^&;|]+)", command):
            packages.update(w for w in match.group(1).split() if not w.startswith("-"))
    return packages


def test_multi_stage_on_python_311_slim() -> None:
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    for stage in (build, final):
        assert stage.base.startswith("python:3.11-slim")
    assert build.name
    assert any(f"from={build.name}" in run for run in final.all("RUN")) or any(
        f"--from={build.name}" in copy for copy in final.all("COPY")
    ), "the final stage takes its wheels from the build stage"


def test_build_stage_compiles_the_wheels() -> None:
    build = stages()[0]
    assert {"gcc", "g++", "make"} <= apt_packages(build)
    assert any("pip wheel" in run and "[rocksdb]" in run for run in build.all("RUN"))


def test_final_stage_has_no_compiler() -> None:
    final = stages()[-1]
    installed = apt_packages(final)
    assert not installed & set(COMPILERS), installed
    assert not {p for p in installed if p.endswith("-dev")}, installed


def test_final_stage_runs_the_worker_as_non_root() -> None:
    final = stages()[-1]
    users = final.all("USER")
    assert users, "the final stage sets a user"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert json.loads(final.all("ENTRYPOINT")[-1]) == ["cdi-stream"]
    assert json.loads(final.all("CMD")[-1]) == ["worker"]
    assert str(METRICS_PORT) in final.all("EXPOSE")[-1].split()


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for match in re.finditer(r"(\w+)=(\S+)", args):
            env[match.group(1)] = match.group(2)
    return env


def test_final_stage_defaults(settings_variables: set[str]) -> None:
    final = stages()[-1]
    env = _env(final)
    assert env["CDI_STORE"] == "rocksdb://"
    assert env["CDI_PROFILE"] == "production"
    assert env["CDI_METRICS_PORT"] == str(METRICS_PORT)
    volumes = " ".join(final.all("VOLUME"))
    assert env["CDI_DATA_DIR"] in volumes
    unknown = {k for k in env if k.startswith("CDI_")} - settings_variables
    assert not unknown, f"not settings: {unknown}"


def test_metrics_port_is_the_settings_default() -> None:
    from cdi_stream.settings import Settings

    assert Settings.model_fields["metrics_port"].default == METRICS_PORT


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also matches a parent."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, glob) or (
                glob.startswith("**/") and fnmatch.fnmatchcase(candidate, glob[3:])
            ):
                ignored = not negate
                break
    return ignored


def dockerignore() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path", [".venv/bin/python", ".git/HEAD", "tests/conftest.py", "cdi-stream-data/x", "bench"]
)
def test_dockerignore_leaves_out(path: str) -> None:
    assert _ignored(path, dockerignore())


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = dockerignore()
    for stage in stages():
        for args in stage.all("COPY"):
            if "--from" in args:
                continue
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not _ignored(source.rstrip("/"), patterns), f"{source} is ignored"
    assert _ignored("cdi_stream/__pycache__/x.pyc", patterns)
    assert not _ignored("cdi_stream/settings.py", patterns)


def test_health_check_fetches_the_metrics_endpoint() -> None:
    (check,) = stages()[-1].all("HEALTHCHECK")
    _, _, command = check.partition(" CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "<healthcheck>", "exec")
    assert "/metrics" in argv[2] and "CDI_METRICS_PORT" in argv[2]


def test_health_check_passes_with_metrics_served_or_turned_off_and_fails_otherwise() -> None:
    import http.server
    import subprocess
    import sys
    import threading

    (check,) = stages()[-1].all("HEALTHCHECK")
    program = json.loads(check.partition(" CMD ")[2])[2]

    def status(port: int) -> int:
        env = {"PATH": "/usr/bin:/bin", "CDI_METRICS_PORT": str(port)}
        return subprocess.run([sys.executable, "-c", program], env=env, timeout=30).returncode

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass = type(
        "Metrics",
        (http.server.BaseHTTPRequestHandler,),
        {
            "do_GET": lambda self: (self.send_response(200), self.end_headers()),
            "log_message": lambda self, *_: None,
        },
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        served = server.server_address[1]
        assert status(served) == 0
        assert status(0) == 0  # the endpoint turned off: nothing to probe
    finally:
        server.shutdown()
        server.server_close()
    assert status(served) != 0  # nothing answers any more
