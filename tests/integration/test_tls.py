"""A worker on a broker that speaks only TLS: every client it makes must use it.

The local broker has no TLS listener of its own, so a TLS-terminating proxy stands in
front of it and the broker advertises the proxy's port: a client that connects in plain
text anywhere (the worker's topic set-up, its consumer, its producer) cannot reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from cdi_stream.broker import LocalBroker, free_port
from tests.engine.scenario import Incident
from tests.integration.workers import PARTITIONS, Topics, running, wait_for


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "broker.crt", directory / "broker.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def tls_proxy(listen: int, target: int, cert: Path, key: Path) -> Iterator[None]:
    """Accept TLS on ``listen`` and forward the plain bytes to ``target``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen, ssl=context)
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            async with server:
                await server.serve_forever()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10), "TLS proxy did not start"
    try:
        yield
    finally:

        def cancel_all() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        loop.call_soon_threadsafe(cancel_all)
        thread.join(10)
        if not thread.is_alive():
            loop.close()


@pytest.fixture
def tls_broker(tmp_path: Path, local_broker_binary: None) -> Iterator[tuple[str, Path]]:
    """(bootstrap address that only speaks TLS, CA file that trusts it)."""
    cert, key = self_signed(tmp_path)
    port = free_port("127.0.0.1")
    broker = LocalBroker(advertised_port=port).start()
    try:
        with tls_proxy(port, broker.port, cert, key):
            yield f"127.0.0.1:{port}", cert
    finally:
        broker.cleanup()


def test_a_worker_sets_up_topics_and_runs_over_tls(
    tls_broker: tuple[str, Path], tmp_path: Path
) -> None:
    """Regression: the worker created its topics with a plain-text admin client, so it
    could not start against a TLS or SASL_SSL cluster."""
    bootstrap, ca = tls_broker
    tls: dict[str, Any] = {"security_protocol": "SSL", "ssl_cafile": str(ca)}
    topics = Topics()
    env = topics.env(bootstrap, CDI_SECURITY_PROTOCOL="SSL", CDI_SSL_CAFILE=str(ca))
    events = Incident("INC-TLS").reported(0).closed(1, "non_crime").events
    with running(env, tmp_path / "worker.log"):  # topics created by the worker itself
        producer = KafkaProducer(bootstrap_servers=bootstrap, **tls)
        for event in events:
            producer.send(topics.incidents, key=b"INC-TLS", value=json.dumps(event).encode())
        producer.flush()
        producer.close()

        def flags() -> list[dict[str, Any]]:
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=1500, **tls)
            parts = [TopicPartition(topics.review, p) for p in range(PARTITIONS)]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            out = [json.loads(m.value) for m in consumer]
            consumer.close()
            return out

        got = wait_for(flags, lambda messages: bool(messages), timeout=60)
    assert {m["finding"] for m in got} == {"crime_not_recorded"}
