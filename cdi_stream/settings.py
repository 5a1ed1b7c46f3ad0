"""Service configuration, read from ``CDI_*`` environment variables.

One object is the single source of truth for the stream service: the faust app, plain
Kafka clients and the engine all derive their options from it, so what
``cdi-stream config`` prints is what the service runs with.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import ssl
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from cdi_stream.engine.config import DAY, HOUR, EngineConfig

__all__ = [
    "CASES_TABLE",
    "ENV_PREFIX",
    "LOCAL_FAUST_SETTINGS",
    "LOCAL_KAFKA_CONSUMER_SETTINGS",
    "KafkaClient",
    "Settings",
    "SettingsError",
    "env_name",
    "load_settings",
    "render_config",
    "render_config_json",
    "unknown_env_vars",
]

ENV_PREFIX: Final = "CDI_"
CASES_TABLE: Final = "cases"  # the faust table of case states

Profile = Literal["production", "local"]
Clock = Literal["hybrid", "event"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
KafkaClient = Literal["consumer", "producer", "admin"]

DEFAULT_KAFKA_PORT: Final = 9092
MASK: Final = "***"

# The single-node test broker holds group joins until half the session timeout has
# passed, so faust's 60 s default makes a worker take half a minute to start.  Its
# ListOffsets reply is off by a batch, which makes faust's table recovery stop early;
# one record per producer batch keeps the changelog end right (at a throughput cost).
LOCAL_FAUST_SETTINGS: Final[Mapping[str, float | int]] = {
    "broker_session_timeout": 3.0,
    "broker_heartbeat_interval": 0.5,
    "producer_max_batch_size": 1,
}
# Same join delay for plain consumer groups; heartbeats at a quarter of the timeout.
LOCAL_KAFKA_CONSUMER_SETTINGS: Final[Mapping[str, int]] = {
    "session_timeout_ms": 3000,
    "heartbeat_interval_ms": 750,
}

_SASL_PROTOCOLS: Final = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_SSL_PROTOCOLS: Final = frozenset({"SSL", "SASL_SSL"})


class SettingsError(ValueError):
    """The configuration cannot be used; the message names each variable to fix."""


def env_name(field: str) -> str:
    """Users set variables, not fields, so every message speaks of variables."""
    return f"{ENV_PREFIX}{field.upper()}"


def _problem(field: str, message: str) -> PydanticCustomError:
    # A model-level check has no field location; the variable goes into the message.
    return PydanticCustomError(
        "cdi_settings",
        "{variable}: {message}",
        {
            "variable": env_name(field),
            "message": message,
        },
    )


def _split_server(entry: str) -> tuple[str, int]:
    if "://" in entry:
        raise ValueError(f"{entry!r}: give host:port without a scheme")
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or not host:
            raise ValueError(f"{entry!r}: empty or unclosed IPv6 address")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{entry!r}: expected [address]:port")
        port_text = rest[1:] if rest else ""
        host = f"[{host}]"
    elif entry.count(":") > 1:
        raise ValueError(f"{entry!r}: write an IPv6 address in brackets, e.g. [::1]:9092")
    else:
        host, _, port_text = entry.partition(":")
    if not host or any(char.isspace() for char in host):
        raise ValueError(f"{entry!r}: missing or malformed host")
    if not port_text:
        return host, DEFAULT_KAFKA_PORT
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{entry!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


class Settings(BaseSettings):
    """Production defaults; ``CDI_PROFILE=local`` adapts the clients to the test broker.

    Frozen so that a worker cannot drift from what it logged at start-up.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        # An empty variable (``CDI_RULES_DIR=``) means "unset", not ``Path("")``,
        # which would silently be the working directory.
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        # "inf" would read as a deadline that never falls due or a commit that never
        # happens: every number must be finite.
        allow_inf_nan=False,
        # Pydantic would otherwise print rejected input, which may be a password.
        hide_input_in_errors=True,
    )

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Comma-separated host:port list; the port defaults to 9092.",
    )
    profile: Profile = Field(
        "production",
        description="'local' shortens group timeouts and batches for the single-node test "
        "broker; 'production' keeps Kafka's and faust's defaults.",
    )
    clock: Clock = Field(
        "hybrid",
        description="'hybrid' also advances deadlines by the wall clock when no events "
        "arrive; 'event' moves time only with events, so replays are deterministic.",
    )
    partitions: int = Field(8, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=16)

    topic_incidents: str = Field("cdi.incidents", min_length=1, max_length=249)
    topic_decisions: str = Field("cdi.ddm-decisions", min_length=1, max_length=249)
    topic_review: str = Field("cdi.ddm-review", min_length=1, max_length=249)
    topic_dlq: str = Field("cdi.incidents.dlq", min_length=1, max_length=249)
    consumer_group: str = Field(
        "cdi-stream",
        min_length=1,
        description="The faust app id: also the consumer group and the prefix of every "
        "changelog topic, so changing it starts the tables from empty.",
    )
    store: str = Field(
        "memory://",
        description="Table store: memory:// rebuilds tables from their changelogs at every "
        "start; rocksdb:// keeps them on disk under CDI_DATA_DIR (needs the 'rocksdb' extra).",
    )
    data_dir: Path | None = Field(
        None,
        description="faust's data directory (rocksdb tables live in its v1/tables folder); "
        "unset: '<consumer group>-data' in the working directory.",
    )

    # Bounded so that every deadline and drop time stays a representable date.
    first_warning_hours: float = Field(12.0, gt=0, le=8760)
    second_warning_hours: float = Field(20.0, gt=0, le=8760)
    deadline_hours: float = Field(24.0, gt=0, le=8760)
    retention_days: float = Field(30.0, gt=0, le=36500)
    max_events_per_incident: int = Field(
        EngineConfig().max_events_per_incident,
        ge=1,
        description="Bounds one incident's state so a runaway source cannot exhaust memory.",
    )
    max_parties_per_incident: int = Field(
        EngineConfig().max_parties_per_incident,
        ge=1,
        description="Bounds the disclosure versions plus victims of one incident, so that no "
        "source can make an incident's evaluation slow enough to stall its partition.",
    )
    rules_dir: Path | None = Field(None, description="Unset: the rules shipped with the package.")
    rules_reload_seconds: float = Field(
        10.0,
        ge=0,
        description="How often a worker checks the rules directory for changes (0: only on "
        "SIGHUP). A changed directory is validated and compiled before it replaces the rules.",
    )
    fetch_max_wait_ms: int | None = Field(
        None,
        ge=0,
        le=30_000,
        description="How long a worker's fetch may wait for data. Unset: 500 in production "
        "(Kafka answers a fetch as soon as data arrives, so this only bounds idle polls); "
        "100 in the local profile: the local broker holds a fetch until the wait ends even "
        "when data arrives, so the wait bounds latency there (10 ms overloaded it).",
    )
    commit_interval_seconds: float = Field(
        2.8,
        gt=0,
        description="How often a worker commits the input offsets it has processed. A "
        "worker that dies reprocesses at most this much input (faust's default).",
    )
    shutdown_timeout_seconds: float = Field(
        20.0,
        gt=0,
        le=3600,
        description="How long a stopping worker may take to flush and commit. With the "
        "broker unreachable that never finishes; the worker then exits anyway (status 1), "
        "and its uncommitted input is processed again by the next owner. Keep it below "
        "the orchestrator's grace period (Kubernetes: 30 s by default).",
    )
    max_event_ahead_seconds: float = Field(
        3600.0,
        ge=0,
        description="An event dated further than this ahead of the wall clock goes to the "
        "dead-letter topic as future_event, so a wrong date cannot fire every deadline "
        "(0: no bound, for compressed-time demos).",
    )

    metrics_host: str | None = Field(
        None,
        description="Unset: 127.0.0.1 in the local profile; all interfaces (0.0.0.0) in "
        "production, because Prometheus scrapes a container from outside it.",
    )
    metrics_port: int = Field(9108, ge=0, le=65535, description="0 turns the endpoint off.")
    max_message_bytes: int = Field(
        1_048_576,
        # A report with a victim and a disclosure takes about 500 bytes: a smaller
        # limit would send every event to the dead-letter topic.
        ge=1024,
        description="Larger input messages go to the dead-letter topic as too_large.",
    )

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @field_validator("profile", "clock", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",")]
        if not any(entries):
            raise ValueError("give at least one host:port")
        if not all(entries):
            raise ValueError("empty entry in the comma-separated list")
        # Normalised, so the printed configuration shows the port each client will use.
        return ",".join(f"{host}:{port}" for host, port in map(_split_server, entries))

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        if value in {"memory://", "rocksdb://"}:
            return value
        if value.startswith("rocksdb:"):
            # faust takes a rocksdb URL's path as the file name of every table, so all
            # tables would share (and corrupt) the same files, or write to "/".
            raise ValueError(
                f"must be exactly rocksdb:// with no path; set {env_name('data_dir')} "
                "to choose where tables are stored"
            )
        raise ValueError("must be memory:// or rocksdb://")

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        self._check_warnings()
        self._check_topics()
        self._check_security()
        return self

    def _check_topics(self) -> None:
        """Two roles on one topic loop or mix messages: dead letters read back as
        input (each one dead-lettered again, for ever), or flags read as decisions."""
        seen: dict[str, str] = {}
        roles = ("topic_incidents", "topic_decisions", "topic_review", "topic_dlq")
        for field in roles:
            name = getattr(self, field)
            if name in seen:
                raise _problem(field, f"is {name!r}, the same topic as {env_name(seen[name])}")
            seen[name] = field
        changelog = self.changelog_topic
        if changelog in seen:
            raise _problem(seen[changelog], f"is {changelog!r}, the cases table's changelog topic")

    def _check_warnings(self) -> None:
        order = ("first_warning_hours", "second_warning_hours", "deadline_hours")
        for earlier, later in itertools.pairwise(order):
            if getattr(self, earlier) >= getattr(self, later):
                raise _problem(
                    earlier,
                    f"must be less than {env_name(later)} "
                    f"({getattr(self, earlier)} >= {getattr(self, later)})",
                )

    def _check_security(self) -> None:
        protocol = self.security_protocol
        if protocol in _SASL_PROTOCOLS:
            for field in ("sasl_mechanism", "sasl_username", "sasl_password"):
                value = getattr(self, field)
                if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                    raise _problem(
                        field, f"required when {env_name('security_protocol')}={protocol}"
                    )
        else:
            for field in ("sasl_mechanism", "sasl_username", "sasl_password"):
                if getattr(self, field) is not None:
                    # Credentials that would be silently unused are a misconfiguration.
                    raise _problem(
                        field,
                        f"set, but {env_name('security_protocol')}={protocol} does not use SASL",
                    )
        ssl_fields = ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
        if protocol not in _SSL_PROTOCOLS:
            for field in ssl_fields:
                if getattr(self, field) is not None:
                    raise _problem(
                        field,
                        f"set, but {env_name('security_protocol')}={protocol} does not use TLS",
                    )
            return
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise _problem("ssl_keyfile", f"needs {env_name('ssl_certfile')} as well")
        for field in ssl_fields:
            path: Path | None = getattr(self, field)
            if path is not None and not path.is_file():
                raise _problem(field, f"no such file: {path}")
        # Loaded now, as the worker will load them: a file that is there but is not
        # PEM (or a key that does not match its certificate) is a settings problem, not
        # a traceback once the worker has started.
        self._tls_context()

    # Derived configuration ---------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> list[str]:
        """The ``host:port`` entries, the form both faust and kafka-python take as a list."""
        return self.kafka_bootstrap_servers.split(",")

    @property
    def topics(self) -> list[str]:
        """Every topic the service reads or writes, to create them before faust starts."""
        return [self.topic_incidents, self.topic_decisions, self.topic_review, self.topic_dlq]

    @property
    def changelog_topic(self) -> str:
        """faust's name for the cases table's changelog (created before the app starts)."""
        return f"{self.consumer_group}-{CASES_TABLE}-changelog"

    def fetch_wait_ms(self) -> int:
        if self.fetch_max_wait_ms is not None:
            return self.fetch_max_wait_ms
        return 100 if self.profile == "local" else 500

    def rules_directory(self) -> Path:
        """The rules the worker runs: the setting, else the shipped rules. Every command
        that reads rules asks here, so they all check and use the same directory."""
        from cdi_stream.rules.loader import default_rules_dir

        return self.rules_dir or default_rules_dir()

    def effective_defaults(self) -> dict[str, str]:
        """What the service uses for each setting left unset whose default depends on
        the profile or the working directory, by variable name."""
        derived = {
            "fetch_max_wait_ms": str(self.fetch_wait_ms()),
            "metrics_host": self.metrics_address(),
            "rules_dir": str(self.rules_directory().resolve()),
            "data_dir": str(self.data_directory().absolute()),
        }
        return {env_name(f): v for f, v in derived.items() if getattr(self, f) is None}

    def data_directory(self) -> Path:
        """The worker's data directory, given to faust and locked against a second
        worker: the setting, else what faust itself would choose."""
        return self.data_dir or Path(f"{self.consumer_group}-data")

    def metrics_address(self) -> str:
        """Where the metrics endpoint listens: loopback unless production asks otherwise."""
        if self.metrics_host:
            return self.metrics_host
        return "127.0.0.1" if self.profile == "local" else "0.0.0.0"

    def engine_config(self) -> EngineConfig:
        """The engine works in seconds; people configure hours and days."""
        return EngineConfig(
            first_warning=self.first_warning_hours * HOUR,
            second_warning=self.second_warning_hours * HOUR,
            deadline=self.deadline_hours * HOUR,
            retention=self.retention_days * DAY,
            max_events_per_incident=self.max_events_per_incident,
            max_parties_per_incident=self.max_parties_per_incident,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """faust (aiokafka) takes TLS only as a context, not as file names."""
        if self.security_protocol not in _SSL_PROTOCOLS:
            return None
        return self._tls_context()

    def _tls_context(self) -> ssl.SSLContext:
        """The TLS context from the configured files; a file that cannot be loaded is
        a problem named by its variable."""
        try:
            context = ssl.create_default_context(
                purpose=ssl.Purpose.SERVER_AUTH,
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
            )
        except (ssl.SSLError, OSError) as exc:
            raise _problem("ssl_cafile", f"cannot be loaded as PEM certificates: {exc}") from None
        if self.ssl_certfile is not None:
            try:
                context.load_cert_chain(
                    str(self.ssl_certfile),
                    keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
                )
            except (ssl.SSLError, OSError) as exc:
                raise _problem(
                    "ssl_certfile",
                    f"cannot be loaded with its key ({env_name('ssl_keyfile')}) as PEM: {exc}",
                ) from None
        return context

    def broker_credentials(self) -> Any:
        """The faust credentials object, or None for PLAINTEXT.

        Built here rather than with ``faust.SSLCredentials(cafile=...)``: that form passes
        ``purpose=None`` to ``ssl.create_default_context`` and raises ``TypeError``.
        """
        if self.security_protocol == "PLAINTEXT":
            return None
        from faust.auth import SASLCredentials, SSLCredentials

        context = self.ssl_context()
        if self.security_protocol == "SSL":
            return SSLCredentials(context)
        assert self.sasl_password is not None  # guaranteed by validation
        return SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password.get_secret_value(),
            mechanism=self.sasl_mechanism,
            ssl_context=context,
        )

    def faust_settings(self) -> dict[str, Any]:
        """Keyword arguments for ``faust.App(**settings.faust_settings())``.

        ``env`` is empty on purpose: faust otherwise reads unprefixed variables such as
        ``BROKER_URL``, ``WEB_PORT`` or ``APP_STORE`` from the process environment and lets
        them override these arguments, so a stray variable would silently change the broker.
        """
        options: dict[str, Any] = {
            "id": self.consumer_group,
            "env": {},
            "broker": [f"kafka://{server}" for server in self.bootstrap_servers],
            "broker_credentials": self.broker_credentials(),
            "store": self.store,
            # faust expands ``{conf...}`` in this path; braces in ours are literal.
            "datadir": str(self.data_directory()).replace("{", "{{").replace("}", "}}"),
            "topic_partitions": self.partitions,
            "topic_replication_factor": self.replication_factor,
            # faust's web server has no authentication, and nothing here needs it: the
            # metrics endpoint is served apart.
            "web_enabled": False,
            # The test broker cannot run transactions, and every output has a stable id.
            "processing_guarantee": "at_least_once",
            "broker_commit_interval": self.commit_interval_seconds,
        }
        if self.profile == "local":
            options.update(LOCAL_FAUST_SETTINGS)
        return options

    def kafka_python_config(self, client: KafkaClient = "consumer") -> dict[str, Any]:
        """Keyword arguments for a kafka-python client of the given kind.

        kafka-python rejects options a client does not know, so group timeouts are only
        given to consumers.
        """
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in _SASL_PROTOCOLS:
            assert self.sasl_password is not None  # guaranteed by validation
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = self.sasl_password.get_secret_value()
        for field in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path: Path | None = getattr(self, field)
            if path is not None:
                config[field] = str(path)
        if client == "consumer" and self.profile == "local":
            config.update(LOCAL_KAFKA_CONSUMER_SETTINGS)
        return config

    def masked(self) -> dict[str, Any]:
        """The effective configuration as JSON-able data that is safe to print or log."""
        data: dict[str, Any] = {}
        for field in type(self).model_fields:
            value = getattr(self, field)
            if isinstance(value, SecretStr):
                value = MASK
            elif isinstance(value, Path):
                value = str(value)
            data[field] = value
        return data


def _format_errors(exc: ValidationError) -> str:
    lines: list[str] = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        location = error["loc"]
        if not location or not isinstance(location[0], str):
            lines.append(message)  # a model-level check, already naming its variable
            continue
        field = location[0]
        line = f"{env_name(field)}: {message}"
        # Echo the rejected value to help find it in a deployment template, except where
        # it could be a credential or the field is unknown (and so of unknown kind).
        value = error.get("input")
        if _is_plain_field(field) and isinstance(value, str | int | float):
            line += f" (got {value!r})"
        lines.append(line)
    return "\n".join(lines)


def _is_plain_field(field: str) -> bool:
    info = Settings.model_fields.get(field)
    if info is None:
        return False
    annotation = info.annotation
    return annotation is not SecretStr and SecretStr not in typing.get_args(annotation)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; overrides (by field name) win over the environment.

    Raises :class:`SettingsError` whose message has one ``CDI_NAME: problem`` line per
    problem found. The checks that compare settings with each other (warning order,
    security) run once every setting is valid on its own, so they can only show on a
    second attempt.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_format_errors(exc)) from None


def unknown_env_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    """``CDI_*`` variables that are no setting, with a suggestion when one is close.

    Unknown variables are ignored when loading; listing them catches a mistyped name,
    whose value would otherwise silently not apply.
    """
    environ = os.environ if environ is None else environ
    known = [env_name(field) for field in Settings.model_fields]
    found: list[str] = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(upper, known, n=1)
        found.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return found


def _profile_comment(settings: Settings) -> str:
    if settings.profile == "production":
        return "# profile: production (Kafka and faust defaults for timeouts and batching)"
    faust_part = ", ".join(f"{key}={value}" for key, value in LOCAL_FAUST_SETTINGS.items())
    kafka_part = ", ".join(f"{key}={value}" for key, value in LOCAL_KAFKA_CONSUMER_SETTINGS.items())
    return (
        f"# profile: local (faust: {faust_part}; kafka-python consumers: {kafka_part}) "
        "for the single-node test broker, not for a production cluster"
    )


def render_config(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The text of ``cdi-stream config``: one ``CDI_NAME=value`` line per setting.

    The lines can be pasted back into an environment file; unset values print as empty,
    which loads as unset, after a comment saying what the service uses instead where
    that depends on the profile or the working directory. Secrets print as ``***``.
    """
    lines = [_profile_comment(settings)]
    lines.extend(f"# ignored, not a setting: {name}" for name in unknown_env_vars(environ))
    values = {env_name(field): value for field, value in settings.masked().items()}
    derived = settings.effective_defaults()
    for name in sorted(values):
        value = values[name]
        if name in derived:
            lines.append(f"# {name} unset: {derived[name]}")
        lines.append(f"{name}={'' if value is None else value}")
    return "\n".join(lines) + "\n"


def render_config_json(settings: Settings) -> str:
    """The ``--json`` form, for tools; the keys are field names."""
    return json.dumps(settings.masked(), indent=2, sort_keys=True)
