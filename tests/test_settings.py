"""Service configuration from CDI_* variables; no broker is contacted."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import server_list
from faust.types.enums import ProcessingGuarantee
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from cdi_stream.engine.config import DAY, HOUR
from cdi_stream.settings import (
    LOCAL_FAUST_SETTINGS,
    LOCAL_KAFKA_CONSUMER_SETTINGS,
    Settings,
    SettingsError,
    env_name,
    load_settings,
    render_config,
    render_config_json,
    unknown_env_vars,
)

SECRET = "s3cr3t-Pa55word-that-must-not-leak"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A developer's shell may export CDI_* or faust's own variables."""
    for name in list(os.environ):
        if name.upper().startswith("CDI_") or name in {"BROKER_URL", "WEB_PORT", "APP_STORE"}:
            monkeypatch.delenv(name)
    yield


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and client certificate, made fresh rather than kept in the repo."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "client.pem", directory / "client.key"
    command = shlex.split(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
        " -subj /CN=cdi-stream-test"
    )
    subprocess.run(
        [*command, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    return {"cafile": cert, "certfile": cert, "keyfile": key}


def sasl_env(monkeypatch: pytest.MonkeyPatch, protocol: str = "SASL_PLAINTEXT") -> None:
    monkeypatch.setenv("CDI_SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("CDI_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CDI_SASL_USERNAME", "cdi")
    monkeypatch.setenv("CDI_SASL_PASSWORD", SECRET)


# Reading -------------------------------------------------------------------------------


def test_defaults_are_the_production_ones() -> None:
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.profile == "production"
    assert settings.clock == "hybrid"
    assert (settings.partitions, settings.replication_factor) == (8, 1)
    assert settings.topics == [
        "cdi.incidents",
        "cdi.ddm-decisions",
        "cdi.ddm-review",
        "cdi.incidents.dlq",
    ]
    assert settings.consumer_group == "cdi-stream"
    assert settings.store == "memory://"
    assert (settings.first_warning_hours, settings.second_warning_hours) == (12, 20)
    assert (settings.deadline_hours, settings.retention_days) == (24, 30)
    assert settings.rules_dir is None
    assert (settings.metrics_address(), settings.metrics_port) == ("0.0.0.0", 9108)
    assert (settings.rules_reload_seconds, settings.max_event_ahead_seconds) == (10, 3600)
    assert settings.max_message_bytes == 1_048_576
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.sasl_password is None


def test_variables_are_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_KAFKA_BOOTSTRAP_SERVERS", "k1:9093, k2")
    monkeypatch.setenv("CDI_PROFILE", "local")
    monkeypatch.setenv("CDI_CLOCK", "event")
    monkeypatch.setenv("CDI_PARTITIONS", "16")
    monkeypatch.setenv("CDI_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("CDI_STORE", "rocksdb://")
    monkeypatch.setenv("CDI_RULES_DIR", "/srv/rules")
    monkeypatch.setenv("CDI_TOPIC_REVIEW", "force.review")
    monkeypatch.setenv("CDI_DEADLINE_HOURS", "36")
    monkeypatch.setenv("CDI_METRICS_PORT", "0")
    monkeypatch.setenv("PARTITIONS", "2")  # without the prefix: not ours
    settings = load_settings()
    assert settings.bootstrap_servers == ["k1:9093", "k2:9092"]
    assert settings.profile == "local"
    assert settings.clock == "event"
    assert (settings.partitions, settings.replication_factor) == (16, 3)
    assert settings.store == "rocksdb://"
    assert settings.rules_dir == Path("/srv/rules")
    assert settings.topic_review == "force.review"
    assert settings.deadline_hours == 36
    assert settings.metrics_port == 0


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_RULES_DIR", "")
    monkeypatch.setenv("CDI_PARTITIONS", "")
    settings = load_settings()
    assert settings.rules_dir is None  # not Path(""), the working directory
    assert settings.partitions == 8


def test_enumerations_ignore_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_PROFILE", "LOCAL")
    monkeypatch.setenv("CDI_CLOCK", "Event")
    sasl_env(monkeypatch)
    monkeypatch.setenv("CDI_SECURITY_PROTOCOL", "sasl_plaintext")
    monkeypatch.setenv("CDI_SASL_MECHANISM", "scram-sha-256")
    settings = load_settings()
    assert (settings.profile, settings.clock) == ("local", "event")
    assert settings.security_protocol == "SASL_PLAINTEXT"
    assert settings.sasl_mechanism == "SCRAM-SHA-256"


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_PARTITIONS", "16")
    assert load_settings(partitions=4).partitions == 4


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError):
        setattr(settings, "partitions", 2)  # noqa: B010 - bypass the static check on purpose


# Validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("CDI_PARTITIONS", "0", "greater than or equal to 1"),
        ("CDI_PARTITIONS", "1025", "less than or equal to 1024"),
        ("CDI_PARTITIONS", "eight", "valid integer"),
        ("CDI_REPLICATION_FACTOR", "17", "less than or equal to 16"),
        ("CDI_METRICS_PORT", "65536", "less than or equal to 65535"),
        ("CDI_MAX_MESSAGE_BYTES", "10", "greater than or equal to 1024"),
        ("CDI_DEADLINE_HOURS", "inf", "finite number"),
        ("CDI_COMMIT_INTERVAL_SECONDS", "inf", "finite number"),
        ("CDI_RETENTION_DAYS", "nan", "finite number"),
        ("CDI_DEADLINE_HOURS", "3e14", "less than or equal to 8760"),
        ("CDI_RETENTION_DAYS", "36501", "less than or equal to 36500"),
        ("CDI_PROFILE", "staging", "'production' or 'local'"),
        ("CDI_CLOCK", "wall", "'hybrid' or 'event'"),
        ("CDI_STORE", "redis://cache", "memory:// or rocksdb://"),
        ("CDI_STORE", "rocksdb", "memory:// or rocksdb://"),
        ("CDI_STORE", "rocksdb:///var/lib/cdi", "set CDI_DATA_DIR"),
        ("CDI_STORE", "rocksdb://tables", "no path"),
        ("CDI_FIRST_WARNING_HOURS", "0", "greater than 0"),
        ("CDI_FIRST_WARNING_HOURS", "20", "less than CDI_SECOND_WARNING_HOURS"),
        ("CDI_SECOND_WARNING_HOURS", "24", "less than CDI_DEADLINE_HOURS"),
        ("CDI_DEADLINE_HOURS", "-1", "greater than 0"),
        ("CDI_RETENTION_DAYS", "0", "greater than 0"),
        ("CDI_KAFKA_BOOTSTRAP_SERVERS", "kafka://k1:9092", "without a scheme"),
        ("CDI_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,,k2:9092", "empty entry"),
        ("CDI_KAFKA_BOOTSTRAP_SERVERS", "k1:port", "port must be a number"),
        ("CDI_KAFKA_BOOTSTRAP_SERVERS", "::1:9092", "IPv6 address in brackets"),
        ("CDI_SECURITY_PROTOCOL", "TLS", "'PLAINTEXT', 'SSL'"),
    ],
)
def test_each_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: "), message
    assert fragment in message
    assert "Value error" not in message


def test_documented_message_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_PARTITIONS", "0")
    with pytest.raises(SettingsError, match=r"^CDI_PARTITIONS: Input should be greater than or"):
        load_settings()


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_PARTITIONS", "0")
    monkeypatch.setenv("CDI_STORE", "redis://")
    monkeypatch.setenv("CDI_CLOCK", "wall")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    variables = {line.split(":")[0] for line in str(caught.value).splitlines()}
    assert variables == {"CDI_PARTITIONS", "CDI_STORE", "CDI_CLOCK"}


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)
    with pytest.raises(ValueError, match="CDI_UNKNOWN_KNOB"):
        load_settings(unknown_knob=1)


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_supported_stores(store: str) -> None:
    assert load_settings(store=store).store == store


def test_data_dir_is_where_faust_keeps_tables(tmp_path: Path) -> None:
    settings = load_settings(store="rocksdb://", data_dir=tmp_path)
    conf = faust.App(**settings.faust_settings()).conf
    assert conf.store.scheme == "rocksdb"
    assert Path(conf.datadir) == tmp_path
    assert Path(conf.tabledir).is_relative_to(tmp_path)  # faust adds v<version>/tables


@pytest.mark.parametrize(
    "missing", ["CDI_SASL_MECHANISM", "CDI_SASL_USERNAME", "CDI_SASL_PASSWORD"]
)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_needs_mechanism_user_and_password(
    monkeypatch: pytest.MonkeyPatch, protocol: str, missing: str
) -> None:
    sasl_env(monkeypatch, protocol)
    monkeypatch.delenv(missing)
    with pytest.raises(SettingsError, match=f"^{missing}: required when CDI_SECURITY_PROTOCOL"):
        load_settings()


def test_sasl_credentials_without_a_sasl_protocol_are_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sasl_env(monkeypatch, "SSL")
    with pytest.raises(SettingsError, match="does not use SASL") as caught:
        load_settings()
    assert SECRET not in str(caught.value)


def test_tls_files_without_a_tls_protocol_are_rejected(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    with pytest.raises(SettingsError, match=r"^CDI_SSL_CAFILE: set, but .*does not use TLS"):
        load_settings(ssl_cafile=ca)


def test_missing_ca_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^CDI_SSL_CAFILE: no such file"):
        load_settings(security_protocol="SSL", ssl_cafile=tmp_path / "absent.pem")


def test_key_without_certificate_is_rejected(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("")
    with pytest.raises(SettingsError, match=r"^CDI_SSL_KEYFILE: needs CDI_SSL_CERTFILE"):
        load_settings(security_protocol="SSL", ssl_keyfile=key)


def test_a_rejected_password_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDI_PARTITIONS", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings(sasl_password=[SECRET])
    assert "CDI_SASL_PASSWORD" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert "(got 0)" in str(caught.value) or "(got '0')" in str(caught.value)


# Derived configuration -----------------------------------------------------------------


def test_engine_config_converts_hours_and_days_to_seconds() -> None:
    config = load_settings(
        first_warning_hours=1.5,
        second_warning_hours=2,
        deadline_hours=48,
        retention_days=7,
        max_events_per_incident=10,
    ).engine_config()
    assert config.first_warning == 1.5 * 3600
    assert config.second_warning == 2 * HOUR
    assert config.deadline == 48 * 3600
    assert config.retention == 7 * DAY == 7 * 86400
    assert config.max_events_per_incident == 10


def test_default_engine_config_matches_the_engine_defaults() -> None:
    from cdi_stream.engine import EngineConfig

    assert load_settings().engine_config() == EngineConfig()


def test_local_and_production_differ_exactly_in_the_documented_keys() -> None:
    production = load_settings().faust_settings()
    local = load_settings(profile="local").faust_settings()
    changed = {
        key for key in production.keys() | local.keys() if production.get(key) != local.get(key)
    }
    assert (
        changed
        == set(LOCAL_FAUST_SETTINGS)
        == {
            "broker_session_timeout",
            "broker_heartbeat_interval",
            "producer_max_batch_size",
        }
    )
    assert local["broker_session_timeout"] == 3.0
    assert local["broker_heartbeat_interval"] == 0.5
    assert local["producer_max_batch_size"] == 1
    assert not set(LOCAL_FAUST_SETTINGS) & production.keys()  # faust's defaults apply


def test_faust_settings_are_accepted_by_faust() -> None:
    settings = load_settings(
        profile="local", partitions=4, replication_factor=3, consumer_group="cdi-x"
    )
    conf = faust.App(**settings.faust_settings()).conf
    assert conf.id == "cdi-x"
    assert conf.broker_session_timeout == 3.0
    assert conf.broker_heartbeat_interval == 0.5
    assert conf.producer_max_batch_size == 1
    assert (conf.topic_partitions, conf.topic_replication_factor) == (4, 3)
    assert conf.store.scheme == "memory"
    guarantee: object = conf.processing_guarantee  # faust annotates it as the enum class
    assert guarantee is ProcessingGuarantee.AT_LEAST_ONCE
    assert conf.web_enabled is False  # no unauthenticated web server
    assert conf.broker_credentials is None

    production = faust.App(**load_settings().faust_settings()).conf
    assert production.broker_session_timeout == 60.0
    assert production.producer_max_batch_size == 16384


def test_faust_does_not_take_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "kafka://elsewhere:1")
    monkeypatch.setenv("WEB_PORT", "7777")
    monkeypatch.setenv("APP_STORE", "rocksdb://")
    conf = faust.App(**load_settings().faust_settings()).conf
    assert [str(url) for url in conf.broker] == ["kafka://127.0.0.1:9092"]
    assert conf.web_port == 6066  # faust's default: WEB_PORT was not read
    assert conf.store.scheme == "memory"


def test_several_bootstrap_servers_make_a_faust_broker_list() -> None:
    settings = load_settings(kafka_bootstrap_servers="k1:9092, k2:19092,k3,[::1]:9094")
    broker = settings.faust_settings()["broker"]
    assert broker == [
        "kafka://k1:9092",
        "kafka://k2:19092",
        "kafka://k3:9092",
        "kafka://[::1]:9094",
    ]
    conf = faust.App(**settings.faust_settings()).conf
    assert [url.scheme for url in conf.broker] == ["kafka"] * 4
    # What faust's Kafka driver hands to aiokafka is what kafka-python gets.
    assert server_list(conf.broker, 9092) == settings.kafka_python_config()["bootstrap_servers"]
    assert settings.bootstrap_servers == ["k1:9092", "k2:19092", "k3:9092", "[::1]:9094"]


def test_sasl_credentials_for_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    sasl_env(monkeypatch)
    credentials = load_settings().faust_settings()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("cdi", SECRET)
    assert SECRET not in repr(credentials)


def test_sasl_over_tls_for_faust(
    monkeypatch: pytest.MonkeyPatch, tls_files: dict[str, Path]
) -> None:
    sasl_env(monkeypatch, "SASL_SSL")
    monkeypatch.setenv("CDI_SSL_CAFILE", str(tls_files["cafile"]))
    credentials = load_settings().faust_settings()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_tls_with_client_certificate_for_faust(tls_files: dict[str, Path]) -> None:
    settings = load_settings(
        security_protocol="SSL", **{f"ssl_{k}": v for k, v in tls_files.items()}
    )
    options = settings.faust_settings()
    credentials = options["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"
    assert credentials.context.check_hostname
    assert faust.App(**options).conf.broker_credentials is credentials


@pytest.mark.parametrize("profile", ["production", "local"])
@pytest.mark.parametrize(
    ("client", "known"),
    [
        ("consumer", KafkaConsumer.DEFAULT_CONFIG),
        ("producer", KafkaProducer.DEFAULT_CONFIG),
        ("admin", KafkaAdminClient.DEFAULT_CONFIG),
    ],
)
def test_kafka_python_config_has_only_options_the_client_knows(
    monkeypatch: pytest.MonkeyPatch,
    tls_files: dict[str, Path],
    profile: str,
    client: str,
    known: dict[str, object],
) -> None:
    sasl_env(monkeypatch, "SASL_SSL")
    monkeypatch.setenv("CDI_PROFILE", profile)
    monkeypatch.setenv("CDI_SSL_CAFILE", str(tls_files["cafile"]))
    config = load_settings().kafka_python_config(client)  # type: ignore[arg-type]
    assert set(config) <= set(known)  # kafka-python raises on anything else


def test_kafka_python_config() -> None:
    production = load_settings(kafka_bootstrap_servers="k1,k2:9093").kafka_python_config()
    assert production == {
        "bootstrap_servers": ["k1:9092", "k2:9093"],
        "security_protocol": "PLAINTEXT",
    }
    local = load_settings(profile="local")
    assert local.kafka_python_config()["session_timeout_ms"] == 3000
    assert local.kafka_python_config("consumer")["heartbeat_interval_ms"] == 750
    assert not set(LOCAL_KAFKA_CONSUMER_SETTINGS) & local.kafka_python_config("producer").keys()


def test_kafka_python_config_with_sasl_and_tls(
    monkeypatch: pytest.MonkeyPatch, tls_files: dict[str, Path]
) -> None:
    sasl_env(monkeypatch, "SASL_SSL")
    monkeypatch.setenv("CDI_SSL_CAFILE", str(tls_files["cafile"]))
    config = load_settings().kafka_python_config("producer")
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "cdi"
    assert config["sasl_plain_password"] == SECRET
    assert config["ssl_cafile"] == str(tls_files["cafile"])
    assert "ssl_certfile" not in config


# Rendering -----------------------------------------------------------------------------


def test_secrets_are_masked_everywhere(
    monkeypatch: pytest.MonkeyPatch, tls_files: dict[str, Path]
) -> None:
    sasl_env(monkeypatch, "SASL_SSL")
    monkeypatch.setenv("CDI_SSL_CAFILE", str(tls_files["cafile"]))
    settings = load_settings()
    masked = settings.masked()
    assert masked["sasl_password"] == "***"
    assert masked["sasl_username"] == "cdi"
    text = render_config(settings)
    assert "CDI_SASL_PASSWORD=***\n" in text
    as_json = render_config_json(settings)
    assert json.loads(as_json)["sasl_password"] == "***"
    for shown in (json.dumps(masked), text, as_json, str(settings), repr(settings)):
        assert SECRET not in shown


def test_json_form_is_the_masked_configuration() -> None:
    settings = load_settings(rules_dir=Path("/srv/rules"))
    text = render_config_json(settings)
    assert text == json.dumps(settings.masked(), indent=2, sort_keys=True)
    assert json.loads(text)["rules_dir"] == "/srv/rules"
    assert json.loads(text)["sasl_password"] is None


def test_text_form_has_one_sorted_line_per_setting() -> None:
    settings = load_settings(partitions=12)
    lines = render_config(settings, environ={}).splitlines()
    comments = [line for line in lines if line.startswith("#")]
    assignments = [line for line in lines if not line.startswith("#")]
    assert lines[0].startswith("# profile: production")
    # Beyond the profile, only notes on what an unset setting resolves to, each just
    # above its own line.
    for note in comments[1:]:
        name = note.split()[1]
        assert note.startswith(f"# {name} unset: ")
        assert lines[lines.index(note) + 1] == f"{name}="
    assert assignments == sorted(assignments)
    names = [line.split("=", 1)[0] for line in assignments]
    assert names == sorted(env_name(field) for field in Settings.model_fields)
    assert "CDI_PARTITIONS=12" in assignments
    assert "CDI_RULES_DIR=" in assignments  # unset prints empty, which loads as unset


def test_text_form_explains_the_local_profile() -> None:
    first = render_config(load_settings(profile="local"), environ={}).splitlines()[0]
    assert first.startswith("# profile: local (")
    for key, value in {**LOCAL_FAUST_SETTINGS, **LOCAL_KAFKA_CONSUMER_SETTINGS}.items():
        assert f"{key}={value}" in first


def test_text_form_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    original = load_settings(profile="local", partitions=3, rules_dir=Path("/srv/rules"))
    for line in render_config(original, environ={}).splitlines():
        if not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    assert load_settings() == original


def test_mistyped_variables_are_listed() -> None:
    environ = {"CDI_PARTITION": "16", "CDI_PARTITIONS": "8", "CDI_ZZZ": "1", "HOME": "/root"}
    assert unknown_env_vars(environ) == ["CDI_PARTITION (did you mean CDI_PARTITIONS?)", "CDI_ZZZ"]
    text = render_config(load_settings(), environ=environ)
    assert "# ignored, not a setting: CDI_PARTITION (did you mean CDI_PARTITIONS?)" in text


def test_metrics_bind_to_loopback_in_the_local_profile() -> None:
    assert load_settings(profile="local").metrics_address() == "127.0.0.1"
    assert load_settings(profile="production").metrics_address() == "0.0.0.0"
    assert load_settings(profile="local", metrics_host="0.0.0.0").metrics_address() == "0.0.0.0"


def test_the_data_directory_named_is_the_one_faust_uses(tmp_path: Path) -> None:
    """The data-dir lock and ``config`` name the directory faust uses: its own default
    when unset, and a set path as it is, braces included (faust formats the path)."""
    settings = load_settings(consumer_group="lockers")
    conf = faust.App(**settings.faust_settings()).conf
    assert Path(conf.datadir) == settings.data_directory() == Path("lockers-data")
    odd = tmp_path / "data-{conf.id}-}{"
    settings = load_settings(consumer_group="lockers", data_dir=odd)
    conf = faust.App(**settings.faust_settings()).conf
    assert Path(conf.datadir) == settings.data_directory() == odd


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("topic_dlq", "cdi.incidents"),
        ("topic_review", "cdi.ddm-decisions"),
        ("topic_decisions", "cdi.incidents.dlq"),
    ],
)
def test_two_roles_on_one_topic_are_rejected(variable: str, value: str) -> None:
    """Regression: with the dead letter topic also the input, one bad message was
    dead-lettered again and again, for ever."""
    with pytest.raises(SettingsError, match=rf"is '{value}', the same topic as") as caught:
        load_settings(**{variable: value})
    assert env_name(variable) in str(caught.value)


def test_a_topic_named_as_the_changelog_is_rejected() -> None:
    with pytest.raises(SettingsError, match=r"^CDI_TOPIC_REVIEW: .*changelog"):
        load_settings(consumer_group="g", topic_review="g-cases-changelog")


@pytest.mark.parametrize("field", ["cafile", "certfile"])
def test_tls_files_that_are_not_pem_are_rejected(
    field: str, tls_files: dict[str, Path], tmp_path: Path
) -> None:
    """Regression: only the files' existence was checked, so ``config`` passed and the
    worker then died with an SSLError traceback (exit 1, not 2)."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    files = {f"ssl_{k}": v for k, v in tls_files.items()}
    files[f"ssl_{field}"] = junk
    with pytest.raises(SettingsError, match=rf"^CDI_SSL_{field.upper()}: cannot be loaded"):
        load_settings(security_protocol="SSL", **files)
    assert load_settings(security_protocol="SSL", **{f"ssl_{k}": v for k, v in tls_files.items()})
