"""The ``cdi-stream`` command line."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cdi_stream.rules.errors import RulesError, RuleValidationError

if TYPE_CHECKING:
    from cdi_stream.rules.book import RuleBook
    from cdi_stream.settings import Settings

app = typer.Typer(
    name="cdi-stream",
    help="Streaming checks of crime-recording decisions against the Home Office rules.",
    no_args_is_help=True,
    add_completion=False,
)
rules_app = typer.Typer(help="Work with rule files.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schema of every message.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(schemas_app, name="schemas")

err = Console(stderr=True, soft_wrap=True)

StrictOption = Annotated[bool, typer.Option(help="Exit with status 1 if any line is rejected.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")]
RulesDirOption = Annotated[
    Path | None,
    typer.Option(
        "--rules", help="Rules directory (default: CDI_RULES_DIR, else the shipped rules)."
    ),
]


def _parse_time(value: str, option: str) -> dt.datetime:
    from cdi_stream.contract import parse_timestamp

    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value}: {exc}", param_hint=f"'{option}'") from exc


def _error(message: object, label: str = "error", style: str = "red") -> None:
    """Print a problem on stderr with its text taken literally, never as rich markup:
    problems quote rule values, file names and input, and a ``[/b]`` in them would
    crash the print while a ``[bold]`` would silently vanish."""
    err.print(Text.assemble((label, style), " ", str(message)), highlight=False)


def _fail(message: str) -> NoReturn:
    _error(message)
    raise typer.Exit(2)


def _check_output(
    path: Path | None, option: str, *inputs: Path | str | None, stdout: bool = True
) -> None:
    """Refuse, before any work, an output that cannot be written or that is one of the
    other files named (inputs, or outputs written before it): opening it for writing
    would empty the input before it is read, or overwrite the earlier output. ``-``
    means standard output where ``stdout`` allows it; elsewhere it is refused rather
    than written as a file named ``-``."""
    if _to_stdout(path) and not stdout:
        _fail(f"{option}: give a file name (- for standard output is not supported here)")
    if path is None or _to_stdout(path):
        return
    if path.is_dir():
        _fail(f"{option}: {path} is a directory, not a file")
    if not path.parent.is_dir():
        _fail(f"{option}: no such directory: {path.parent}")
    for name in inputs:
        if name is None or str(name) == "-":
            continue
        other = Path(name)
        same = other.resolve() == path.resolve() or (
            path.exists() and other.exists() and os.path.samefile(path, other)
        )
        if same:
            _fail(f"{option}: {path} is also named for another file; writing would lose it")


def _to_stdout(path: Path | None) -> bool:
    return path is not None and str(path) == "-"


def _close_quietly(handle: BinaryIO) -> None:
    with contextlib.suppress(OSError):
        handle.close()


def _write_error(exc: OSError, target: object = None) -> NoReturn:
    """A write that failed. An error raised while writing to an open file names no
    file, so the caller names what it was writing."""
    where = exc.filename or target or "the output"
    _fail(f"cannot write {where}: {exc.strerror or exc}")


def _load_book(directory: Path | None) -> RuleBook:
    from cdi_stream.rules.book import RuleBook

    try:
        return RuleBook.from_directory(directory or _settings().rules_directory())
    except RuleValidationError as exc:
        for problem in exc.listed():
            _error(problem)
        raise typer.Exit(2) from exc
    except RulesError as exc:
        _error(exc)
        raise typer.Exit(2) from exc


@app.command()
def replay(
    events: Annotated[str, typer.Argument(help="JSONL file of incident events, or - for stdin.")],
    until: Annotated[
        str | None, typer.Option(help="Advance event time to this RFC 3339 time at the end.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write flag changes here (default or -: stdout)."),
    ] = None,
    rules: RulesDirOption = None,
    strict: StrictOption = False,
    quiet: QuietOption = False,
    metrics: Annotated[
        Path | None,
        typer.Option(
            "--metrics",
            help="Write the run's Prometheus metrics to this file (text exposition format).",
        ),
    ] = None,
) -> None:
    """Run the rules over a file of events with an event-time clock; print flag changes."""
    from cdi_stream.contract import format_timestamp
    from cdi_stream.metrics import Metrics
    from cdi_stream.replay import LineError, OutputError
    from cdi_stream.replay import replay as run_replay
    from cdi_stream.runtime import stdout_reader_gone, tune_gc

    until_at = _parse_time(until, "--until") if until else None
    engine_config = _settings().engine_config()
    _check_output(out, "--out", events)
    _check_output(metrics, "--metrics", events, out, stdout=False)
    book = _load_book(rules)
    with ExitStack() as stack:
        source, size = _open_events(events, stack)
        try:
            sink: BinaryIO = sys.stdout.buffer
            if out and not _to_stdout(out):
                sink = out.open("wb")
                # Flushed, and any failure reported, before the end; closing after a
                # failed write would only raise it again.
                stack.callback(_close_quietly, sink)
        except OSError as exc:
            _write_error(exc)
        progress = None
        if size and err.is_terminal and not quiet:
            from rich.progress import Progress

            progress = stack.enter_context(Progress(console=err, transient=True))
            task = progress.add_task("replaying", total=size)

        def advance(n: int) -> None:
            if progress is not None:
                progress.advance(task, n)

        def report(error: LineError) -> None:
            if not quiet:
                _error(error, "rejected", "yellow")

        recorder = Metrics() if metrics is not None else None
        tune_gc()
        target = str(out) if out and not _to_stdout(out) else "standard output"
        try:
            summary = run_replay(
                source,
                book,
                out=sink,
                until=until_at,
                config=engine_config,
                on_error=report,
                on_progress=advance,
                metrics=recorder,
            )
        except OutputError as exc:
            if isinstance(exc.cause, BrokenPipeError) and sink is sys.stdout.buffer:
                stdout_reader_gone()
                raise typer.Exit(0) from None
            _fail(f"cannot write {target}: {exc}; the flag changes written are incomplete")
        except OSError as exc:  # only writes are wrapped: this came from reading
            _fail(f"cannot read {events}: {exc.strerror or exc}")
        try:
            sink.flush()
        except OSError as exc:
            _write_error(exc, target)
    book.close()
    if recorder is not None and metrics is not None:
        try:
            recorder.write(metrics)
        except OSError as exc:
            _write_error(exc, metrics)
    if not quiet:
        _print_summary(summary)
        end = summary.last_event_at
        if until_at is not None and end is not None and until_at.timestamp() < end:
            err.print(
                f"[yellow]note[/yellow] --until {until} is before the last event "
                f"({format_timestamp(dt.datetime.fromtimestamp(end, dt.UTC))}); event time "
                "stayed there, as it never moves back",
                highlight=False,
            )
    if strict and summary.rejected:
        raise typer.Exit(1)


@app.command()
def report(
    events: Annotated[Path, typer.Argument(help="JSONL file of incident events.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Write the HTML report to this file (- for stdout).")
    ] = Path("report.html"),
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the figures as JSON to this file (- for stdout)."),
    ] = None,
    period_from: Annotated[
        str | None,
        typer.Option("--from", help="Start of the period, RFC 3339 (default: the first report)."),
    ] = None,
    period_to: Annotated[
        str | None,
        typer.Option(
            "--to", help="End of the period, excluded, RFC 3339 (default: after the last report)."
        ),
    ] = None,
    flags: Annotated[
        Path | None,
        typer.Option(
            help="Flag changes to count instead of the replay's: replay --out, or a dump of "
            "the review topic."
        ),
    ] = None,
    decisions: Annotated[
        Path | None, typer.Option(help="DDM decisions (JSONL), for each rule's precision.")
    ] = None,
    yearly_volume: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Crimes recorded in 12 months (excluding fraud), for the unrecorded estimate.",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="When the events were extracted, RFC 3339 (default: the last event's "
            "time). Crimes not yet due by then and not yet recorded are left out.",
        ),
    ] = None,
    rules: RulesDirOption = None,
    strict: StrictOption = False,
    quiet: QuietOption = False,
) -> None:
    """Estimate recording rates, timeliness and flag figures from events: an HTML report."""
    from cdi_stream.contract import format_timestamp
    from cdi_stream.replay import LineError
    from cdi_stream.report import build_report, render_html

    start = _parse_time(period_from, "--from") if period_from else None
    end = _parse_time(period_to, "--to") if period_to else None
    extracted = _parse_time(as_of, "--as-of") if as_of else None
    for path in (events, flags, decisions):
        if path is not None:
            _check_input(path)
    _check_output(out, "--out", events, flags, decisions)
    _check_output(json_out, "--json", events, flags, decisions, out)
    if _to_stdout(json_out) and _to_stdout(out):
        _fail("--json - and --out - would mix HTML and JSON on standard output")
    engine_config = _settings().engine_config()
    book = _load_book(rules)

    def reject(error: LineError) -> None:
        if not quiet:
            _error(error, "rejected", "yellow")

    try:
        result = build_report(
            events,
            book=book,
            period_start=start,
            period_end=end,
            flags_path=flags,
            decisions_path=decisions,
            yearly_volume=yearly_volume,
            config=engine_config,
            as_of=extracted,
            on_error=reject,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        book.close()
    if result.inputs.events == 0:
        _fail(
            f"no events to report on in {events} ({result.inputs.rejected} of "
            f"{result.inputs.lines} lines rejected); nothing written"
        )
    writing: object = "standard output"
    try:
        if _to_stdout(out):
            sys.stdout.write(render_html(result))
        else:
            writing = out
            out.write_text(render_html(result), encoding="utf-8")
        if _to_stdout(json_out):
            writing = "standard output"
            sys.stdout.write(result.to_json())
        elif json_out is not None:
            writing = json_out
            json_out.write_text(result.to_json(), encoding="utf-8")
    except OSError as exc:
        _write_error(exc, writing)
    unread = {
        "flags": result.inputs.flag_lines_rejected,
        "decisions": result.inputs.decision_lines_rejected,
    }
    if not quiet:
        for option, count in unread.items():
            if count:
                err.print(
                    f"[yellow]rejected[/yellow] {count} lines of the --{option} file are not "
                    f"{'flag changes' if option == 'flags' else 'DDM decisions'}; "
                    "the figures leave them out",
                    highlight=False,
                )
        if not result.complete:
            err.print(
                f"[yellow]note[/yellow] the events end before every deadline of the period "
                f"has passed ({format_timestamp(result.complete_at)}): "
                f"{result.recording_rate.pending} crimes not yet due are left out; give "
                "--as-of if the file was extracted later",
                highlight=False,
            )
        err.print(f"{result.summary()}  -> {out}", highlight=False, markup=False)
    if strict and (result.inputs.rejected or any(unread.values())):
        raise typer.Exit(1)


@app.command()
def backtest(
    events: Annotated[str, typer.Argument(help="JSONL file of incident events, or - for stdin.")],
    rules_a: Annotated[
        Path, typer.Option("--rules-a", help="Rule set A, the baseline: a rules directory.")
    ],
    rules_b: Annotated[
        Path, typer.Option("--rules-b", help="Rule set B, compared with A: a rules directory.")
    ],
    until: Annotated[
        str | None, typer.Option(help="Advance event time to this RFC 3339 time at the end.")
    ] = None,
    examples: Annotated[
        int, typer.Option(min=0, help="Example incidents per rule and finding.")
    ] = 5,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the diff as JSON here (- for stdout).")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write the diff as a self-contained HTML page.")
    ] = None,
) -> None:
    """Replay events under two rule sets; report flags added, removed and changed."""
    from cdi_stream.backtest import backtest_command

    until_at = _parse_time(until, "--until") if until else None
    _check_output(json_out, "--json", events)
    _check_output(html_out, "--html", events, json_out, stdout=False)
    engine_config = _settings().engine_config()
    code = backtest_command(
        events,
        rules_a,
        rules_b,
        until=until_at,
        examples=examples,
        json_out=json_out,
        html_out=html_out,
        console=Console(),
        err_console=err,
        config=engine_config,
    )
    raise typer.Exit(code)


def _open_events(name: str, stack: ExitStack) -> tuple[Iterator[bytes], int]:
    from cdi_stream.contract import DEFAULT_MAX_BYTES
    from cdi_stream.replay import bounded_lines

    if name == "-":
        return bounded_lines(sys.stdin.buffer, DEFAULT_MAX_BYTES), 0
    path = Path(name)
    _check_input(path)
    try:
        handle = stack.enter_context(path.open("rb"))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    size = path.stat().st_size if path.is_file() else 0
    return bounded_lines(handle, DEFAULT_MAX_BYTES), size


def _check_input(path: Path) -> None:
    """A file to read: anything there that is not a directory (a pipe, /dev/stdin or
    ``<(zcat ...)`` will do)."""
    if path.is_dir() or not path.exists():
        _fail(_not_a_file(path))


def _not_a_file(path: Path) -> str:
    return f"not a file: {path} (a directory)" if path.is_dir() else f"no such file: {path}"


def _print_summary(summary: object) -> None:
    from cdi_stream.replay import ReplaySummary

    assert isinstance(summary, ReplaySummary)
    err.print(
        f"events read: {summary.events}  rejected: {summary.rejected}  "
        f"duplicates: {summary.duplicates}  flag changes: {summary.flag_changes}  "
        f"unknown offence codes: {summary.unknown_offence_codes}",
        highlight=False,
    )
    table = Table(title="flags by finding (final status)", title_justify="left")
    for column in ("finding", "open", "resolved", "withdrawn"):
        table.add_column(column, justify="left" if column == "finding" else "right")
    for finding, counts in summary.flags_by_finding().items():
        table.add_row(finding, *(str(counts[s]) for s in ("open", "resolved", "withdrawn")))
    err.print(table)


@app.command()
def simulate(
    incidents: Annotated[int, typer.Option(help="How many incidents to generate.")] = 1000,
    seed: Annotated[int, typer.Option(help="Same seed, same stream.")] = 1,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the stream to this JSONL file (- for stdout)."),
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Write the ground truth per incident to this JSONL file.")
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish/--no-publish", help="Send to Kafka (default without --out).")
    ] = False,
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: CDI_KAFKA_BOOTSTRAP_SERVERS)."),
    ] = None,
    topic: Annotated[str, typer.Option(help="Topic to publish to.")] = "cdi.incidents",
    rate: Annotated[
        float, typer.Option(min=0.0, help="At most this many events a second (0: no limit).")
    ] = 0.0,
    speed: Annotated[
        float,
        typer.Option(
            min=0.0, help="Event-time seconds per wall second, e.g. 3600 (0: as fast as rate)."
        ),
    ] = 0.0,
    start: Annotated[
        str | None,
        typer.Option(help="First report time, RFC 3339 or 'now' (publishing defaults to now)."),
    ] = None,
    unrecorded: Annotated[float, typer.Option(help="Share of crimes never recorded.")] = 0.15,
    late: Annotated[float, typer.Option(help="Share recorded after the deadline.")] = 0.06,
    misclassified: Annotated[
        float, typer.Option(help="Share recorded under a lesser class.")
    ] = 0.05,
    undercounted: Annotated[float, typer.Option(help="Share missing a victim's crime.")] = 0.05,
    wrongly_cancelled: Annotated[float, typer.Option(help="Share cancelled wrongly.")] = 0.02,
) -> None:
    """Generate a realistic incident stream with known defects; write it or publish it."""
    import json

    from cdi_stream.simulate import DefectRates, SimConfig, encode_event, generate

    try:
        defects = DefectRates(unrecorded, late, misclassified, undercounted, wrongly_cancelled)
        config = SimConfig(seed=seed, incidents=incidents, defects=defects)
        begin = _start_time(start, publish or out is None)
        if begin is not None:
            config = dataclasses.replace(config, start=begin)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    sending = publish or out is None
    _check_output(out, "--out")
    _check_output(truth, "--truth", out, stdout=False)
    with ExitStack() as stack:
        try:
            sink: BinaryIO | None = None
            if _to_stdout(out):
                sink = sys.stdout.buffer
            elif out is not None:
                sink = stack.enter_context(out.open("wb"))
            truths = stack.enter_context(truth.open("w")) if truth else None
        except OSError as exc:
            _write_error(exc)

        def events() -> Iterator[dict[str, object]]:
            for event, known in generate(config):
                if sink is not None:
                    sink.write(encode_event(event) + b"\n")
                if truths is not None and known is not None:
                    truths.write(json.dumps(_truth_row(known), sort_keys=True) + "\n")
                yield event

        if sending:
            count = _publish(events(), bootstrap, topic, rate, speed)
        else:
            count = sum(1 for _ in events())
    servers = bootstrap or ",".join(_settings().bootstrap_servers)
    where = f"{topic} on {servers}" if sending else str(out)
    err.print(
        f"{count} events from {incidents} incidents (seed {seed}) -> {where}", highlight=False
    )


def _start_time(value: str | None, live: bool) -> dt.datetime | None:
    """Live streams start now, so that wall clock and event time agree; files start at
    the generator's fixed date unless told, so that a seed always gives the same file."""
    if value == "now" or (value is None and live):
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    return _parse_time(value, "--start") if value else None


def _truth_row(known: object) -> dict[str, object]:
    row = dataclasses.asdict(known)  # type: ignore[call-overload]
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}


def _publish(
    events: Iterator[dict[str, object]],
    bootstrap: str | None,
    topic: str,
    rate: float,
    speed: float,
) -> int:
    from cdi_stream.broker import BrokerError, create_topics
    from cdi_stream.publish import Pace, publish

    settings = _settings(**({"kafka_bootstrap_servers": bootstrap} if bootstrap else {}))
    servers = ",".join(settings.bootstrap_servers)
    try:
        pace = Pace(rate=rate, speed=speed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    ahead = settings.max_event_ahead_seconds
    if ahead and (speed == 0 or speed > 1):
        err.print(
            "[yellow]warning[/yellow] event time will run ahead of the wall clock "
            f"({'--speed 0 follows the rate only' if speed == 0 else f'x{speed:g}'}): a "
            f"worker dead-letters events more than {ahead:g} s ahead as future_event; run "
            "it with CDI_MAX_EVENT_AHEAD_SECONDS=0, as the demo does",
            highlight=False,
        )
    # Created here as the worker creates it: a broker that creates topics on first use
    # would pick its own partition count, and the worker would then refuse the topic.
    try:
        create_topics(
            servers,
            {topic: settings.partitions},
            replication=settings.replication_factor,
            client_config=settings.kafka_python_config("admin"),
        )
    except BrokerError as exc:
        _error(exc)
        raise typer.Exit(3) from exc
    try:
        return publish(
            events,
            bootstrap=servers,
            topic=topic,
            pace=pace,
            producer_config=settings.kafka_python_config("producer"),
        )
    except Exception as exc:  # kafka-python raises several unrelated types
        _error(f"cannot publish to {servers}: {exc}")
        raise typer.Exit(3) from exc


LOG_LEVELS = ("debug", "info", "warning", "error")


def _settings(**overrides: object) -> Settings:
    from cdi_stream.settings import SettingsError, load_settings

    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        for line in str(exc).splitlines():
            _error(line)
        raise typer.Exit(2) from exc


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run a streaming worker (configuration from CDI_* variables; see `config`)."""
    from cdi_stream.broker import BrokerError
    from cdi_stream.stream.worker import (
        DataDirInUse,
        DataDirUnusable,
        MetricsPortInUse,
        run_worker,
    )

    if loglevel.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"one of {', '.join(LOG_LEVELS)}", param_hint="--loglevel")
    settings = _settings()
    try:
        run_worker(settings, loglevel=loglevel.lower())
    except (BrokerError, RulesError, MetricsPortInUse, DataDirInUse, DataDirUnusable) as exc:
        if isinstance(exc, RuleValidationError):
            for problem in exc.listed():
                _error(problem)
        else:
            _error(exc)
        raise typer.Exit(2) from exc


@app.command()
def config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Print the effective configuration (CDI_* variables), secrets masked; exit 2 if
    the worker could not start with it (bad settings or rules)."""
    from cdi_stream.settings import render_config, render_config_json

    settings = _settings()
    sys.stdout.write(render_config_json(settings) + "\n" if as_json else render_config(settings))
    # Compiled as the worker compiles them: some limits are only checked then.
    _load_book(settings.rules_directory()).close()


@app.command()
def queue(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the open flags once as JSON (implies --no-follow)."),
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow/--no-follow",
            help="Keep a live table until Ctrl-C, or print it once the topic is quiet for 2 s.",
        ),
    ] = True,
    group: Annotated[
        str | None,
        typer.Option(
            help="Group id to present, for brokers whose ACLs require one; "
            "partitions are still read in full and nothing is committed."
        ),
    ] = None,
) -> None:
    """Show the DDM review queue: the open flags, most urgent first."""
    from cdi_stream.ddm import watch_queue

    settings = _settings()
    code = watch_queue(
        settings,
        follow=follow,
        as_json=as_json,
        group=group,
        console=Console(),
        err_console=err,
    )
    raise typer.Exit(code)


@app.command()
def decide(
    flag_id: Annotated[str, typer.Argument(help="The flag's id, as 'cdi-stream queue' shows it.")],
    reason: Annotated[str, typer.Option(help="Why; kept with the decision for audit.")],
    upheld: Annotated[
        bool, typer.Option("--upheld", help="The flag is right; the record is being corrected.")
    ] = False,
    rejected: Annotated[bool, typer.Option("--rejected", help="The flag is wrong.")] = False,
    ddm: Annotated[
        str | None, typer.Option("--ddm", help="Your DDM reference.  [required]")
    ] = None,
    incident: Annotated[
        str | None,
        typer.Option(help="The flag's incident id (default: looked up on the review topic, ~2 s)."),
    ] = None,
) -> None:
    """Send a DDM decision on a flag to the decisions topic."""
    from cdi_stream.broker import BrokerError
    from cdi_stream.ddm import DecisionError, publish_decision

    if upheld == rejected:
        raise typer.BadParameter("give exactly one of --upheld or --rejected")
    if not ddm:
        raise typer.BadParameter("give your DDM reference", param_hint="--ddm")
    settings = _settings()
    try:
        decision = publish_decision(
            settings,
            flag_id=flag_id,
            incident_id=incident,
            decision="upheld" if upheld else "rejected",
            reason=reason,
            ddm_ref=ddm,
        )
    except DecisionError as exc:
        _error(exc)
        raise typer.Exit(2) from exc
    except BrokerError as exc:
        _error(exc)
        raise typer.Exit(3) from exc
    typer.echo(decision.model_dump_json())
    err.print(
        Text(
            f"{decision.decision} {decision.flag_id} (incident {decision.incident_id}) "
            f"-> {settings.topic_decisions}"
        ),
        highlight=False,
    )


@app.command()
def demo(
    incidents: Annotated[int, typer.Option(min=1, help="Simulated incidents to publish.")] = 5000,
    rate: Annotated[float, typer.Option(min=0.0, help="Events a second (0: no limit).")] = 40.0,
    speed: Annotated[
        float, typer.Option(min=1.0, help="Event-time seconds per wall second (at least 1).")
    ] = 3600.0,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 1,
) -> None:
    """Live demo: local broker, a worker, the simulator, and the DDM queue; Ctrl-C stops all."""
    from cdi_stream.demo import run_demo

    try:
        code = run_demo(incidents=incidents, rate=rate, speed=speed, seed=seed)
    except RuntimeError as exc:
        _error(exc)
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


@app.command()
def broker(
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on (default: a free one).")
    ] = None,
) -> None:
    """Start a local Kafka-protocol broker for development; Ctrl-C stops it."""
    from cdi_stream.broker import BrokerError, run_foreground

    try:
        code = run_foreground(port)
    except BrokerError as exc:
        _error(exc)
        raise typer.Exit(3) from exc
    raise typer.Exit(code)


@rules_app.command("check")
def rules_check(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Rules directory (default: CDI_RULES_DIR, else the shipped rules)."),
    ] = None,
) -> None:
    """Validate rule files; report every problem with its file and rule id."""

    target = directory or _settings().rules_directory()
    book = _load_book(target)
    rules = {r.id for e in book.editions for r in e.rules}
    editions = ", ".join(e.id for e in book.editions)
    book.close()
    typer.echo(
        f"{target}: {len(rules)} rules in {len(book.editions)} editions ({editions}) OK, "
        f"hash {book.content_hash}"
    )


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write.")] = Path("schemas"),
) -> None:
    """Write JSON Schema for every input and output message."""
    from cdi_stream.schemas import export_schemas

    if _to_stdout(directory):
        _fail("--dir: give a directory name (- for standard output is not supported here)")
    if directory.exists() and not directory.is_dir():
        _fail(f"--dir: {directory} is a file, not a directory")
    try:
        written = export_schemas(directory)
    except OSError as exc:
        _write_error(exc)
    for path in written:
        typer.echo(str(path))


@schemas_app.command("check")
def schemas_check(
    directory: Annotated[Path, typer.Option("--dir", help="Where the schemas are.")] = Path(
        "schemas"
    ),
) -> None:
    """Exit 1 if the schemas on disk differ from the models."""
    from cdi_stream.schemas import check_schemas

    if not directory.is_dir():
        _fail(f"no schemas directory {directory}; give --dir, or run from the checkout")
    stale = check_schemas(directory)
    for name in stale:
        _error(directory / name, "out of date")
    if stale:
        err.print("regenerate with: cdi-stream schemas export")
        raise typer.Exit(1)
    typer.echo(f"{directory}: up to date")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
