"""`fraudstream bench throughput|latency|soak|all`: the reproducible benchmark of issue 5.

Each command runs on the local stack (`fraudstream up [--flink-cluster]`), in a private
namespace (own topics and Postgres schema, see `bench.namespace`) that is deleted at the end,
even on Ctrl-C, and writes `bench/results/<stamp>/result.json` + `result.md`.
Heavy imports stay inside the command functions.
"""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

_RESULTS = Path(__file__).resolve().parent / "results"
_SHORT = {"flink-mini": "mini", "flink-cluster": "cluster", "flink-cluster-live": "live",
          "python": "python", "python-x2": "pyx2"}

EngineOpt = Annotated[
    str, typer.Option(help="flink-mini | flink-cluster | flink-cluster-live | python | "
                      "python-x2 | all (comma list allowed; all leaves out flink-cluster-live)")
]
EventsOpt = Annotated[int, typer.Option(help="transactions preloaded for the throughput run")]
JobSetOpt = Annotated[
    list[str] | None,
    typer.Option("--job-set", help="JobConfig name=value for the Flink engines (repeatable)"),
]


def _engines(value: str) -> list[str]:
    from bench.engines import ENGINES

    # `all`: every engine but flink-cluster-live, the cost-of-live-control variant (opt-in)
    if value == "all":
        names = [e for e in ENGINES if e != "flink-cluster-live"]
    else:
        names = [v.strip() for v in value.split(",") if v]
    bad = [n for n in names if n not in ENGINES]
    if bad:
        raise typer.BadParameter(f"unknown engine(s) {bad}; choose from {ENGINES} or all")
    return names


def _job_settings(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items or []:
        if "=" not in item:
            raise typer.BadParameter(f"--job-set expects name=value, got {item!r}")
        k, v = item.split("=", 1)
        out.append((k.strip(), v.strip()))
    return tuple(out)


class _Run:
    """State shared by the commands of one invocation: settings, stamp, dataset, result."""

    def __init__(self, out: Path | None, events: int, cards: int, seed: int) -> None:
        from rich.console import Console

        from bench.machine import describe_machine
        from bench.namespace import BenchNamespace, admin_connect
        from connectors.settings import load_settings

        self.console = Console()
        self.settings = load_settings()
        now = datetime.now(UTC)
        self.stamp = now.strftime("%Y%m%dT%H%M%SZ")
        self.run_id = self.stamp.lower()
        self.out = out or (_RESULTS / self.stamp)
        self.events = events
        self.cards = cards
        self.seed = seed
        self.main_ns = BenchNamespace(self.run_id)
        self.namespaces: list[Any] = [self.main_ns]
        self.admin = admin_connect(self.settings)
        self.result: dict[str, Any] = {
            "stamp": self.stamp,
            "command": "fraudstream " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "machine": describe_machine(),
            "dataset": {"events": events, "cards": cards, "seed": seed, "generator":
                        "models.data.generator defaults except episode_card_share "
                        "(scaled for ~0.5 % fraud, bench.dataset.episode_share)"},
            "notes": [],
        }
        self._pairs: list[tuple[bytes, bytes]] | None = None
        self.keep = False

    def pairs(self) -> list[tuple[bytes, bytes]]:
        if self._pairs is None:
            from rich.progress import Progress

            from bench.dataset import load_or_generate

            with Progress(console=self.console, transient=True) as bar:
                task = bar.add_task(f"dataset {self.events:,} txns", total=self.events)
                self._pairs = load_or_generate(
                    self.events, self.seed, self.cards, self.settings,
                    progress=lambda n: bar.update(task, completed=n),
                )
        return self._pairs

    def engine_ns(self, engine: str, purpose: str) -> Any:
        from bench.namespace import BenchNamespace

        ns = BenchNamespace(f"{self.run_id}_{purpose}_{_SHORT[engine]}")
        self.namespaces.append(ns)
        return ns

    def engine_target(self, engine: str, purpose: str, *, bounded: bool,
                      model_path: str | None, job_set: tuple, peer_batch: int,
                      source_topic: str | None = None) -> tuple[Any, Any]:
        """A fresh namespace (topics + schema) for one engine run and its `EngineTarget`.

        Without `source_topic` the namespace gets its own transactions topic too.
        """
        from bench.engines import PEER_WORKERS, EngineTarget
        from bench.live_control import prepare_control_topic

        ens = self.engine_ns(engine, purpose)
        topics = ("alerts", "dlq") if source_topic else ("transactions", "alerts", "dlq")
        ens.create_topics(self.settings.kafka_bootstrap, self.settings.kafka_partitions, topics)
        ens.create_schema(self.settings)
        control = None
        if engine not in PEER_WORKERS:
            control = prepare_control_topic(self.settings.kafka_bootstrap, ens.topic("control"),
                                            live=engine == "flink-cluster-live")
        target = EngineTarget(
            engine=engine, source_topic=source_topic or ens.source_topic,
            alerts_topic=ens.alerts_topic, dlq_topic=ens.dlq_topic, pg_schema=ens.schema,
            group_id=f"bench-{ens.run_id}", job_name=f"bench-{ens.run_id}", bounded=bounded,
            model_path=model_path, job_settings=job_set if engine not in PEER_WORKERS else (),
            peer_max_batch=peer_batch, control_topic=control,
        )
        return ens, target

    def cleanup(self, keep: bool) -> None:
        if keep:
            self.console.print(f"kept namespaces: {[n.schema for n in self.namespaces]}")
            return
        for ns in self.namespaces:
            problems = ns.drop(self.settings)
            for p in problems:
                self.console.print(f"[yellow]cleanup: {p}")
                self.result["notes"].append(f"cleanup problem: {p}")
        self.admin.close()

    def write(self) -> None:
        from bench.report import render_markdown, write_result

        json_path, md_path = write_result(self.out, self.result)
        self.console.print(render_markdown(self.result))
        self.console.print(f"wrote {json_path} and {md_path}")


def _state_sizes(run: _Run) -> None:
    """Per-card state size after replaying the dataset through the feature module."""
    from bench.stats import summarize_sizes
    from models.features import new_state, state_to_bytes, update
    from schemas.card_token import CardTokenizer
    from schemas.parse import TransactionParseError, parse_transaction

    tokenizer = CardTokenizer(run.settings.card_token_key.reveal().encode())
    states: dict[str, Any] = {}
    for _key, value in run.pairs():
        try:
            txn = parse_transaction(value, tokenizer)
        except TransactionParseError:
            continue
        update(states.setdefault(txn.card_token, new_state()), txn)
    run.result["state"] = summarize_sizes(len(state_to_bytes(s)) for s in states.values()).as_dict()


def _throughput(run: _Run, engines: list[str], job_set: tuple, timeout_s: float,
                peer_batch: int, model_path: str | None, profile_s: float) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.dataset import preload
    from bench.throughput import ThroughputPlan, run_throughput

    pairs = run.pairs()
    _state_sizes(run)
    ns = run.main_ns
    ns.create_topics(run.settings.kafka_bootstrap, run.settings.kafka_partitions,
                     ("transactions",))
    with Progress(console=run.console, transient=True) as bar:
        task = bar.add_task(f"preload {ns.source_topic}", total=len(pairs))
        preload(pairs, ns.source_topic, run.settings.kafka_bootstrap,
                progress=lambda n: bar.update(task, completed=n))
    out = run.result.setdefault("throughput", {})
    plan = ThroughputPlan(events=len(pairs), timeout_s=timeout_s, profile_s=profile_s)
    for engine in engines:
        ens, target = run.engine_target(engine, "tp", bounded=True, model_path=model_path,
                                        job_set=job_set, peer_batch=peer_batch,
                                        source_topic=ns.source_topic)
        columns = (TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed:,}/{task.total:,} rows"), TimeElapsedColumn())
        with Progress(*columns, console=run.console) as bar:
            task = bar.add_task(f"throughput {engine}", total=len(pairs))
            res = run_throughput(target, plan, ens, run.settings, run.admin,
                                 run.out / "logs",
                                 progress=lambda n, _total, t=task: bar.update(t, completed=n))
        out[engine] = res
        if res["ok"]:
            run.console.print(f"{engine}: {res['events_per_s']:,.0f} events/s end to end, "
                              f"{res['cpu_s_per_1000_engine']:.3f} CPU s/1k events")
        else:
            run.console.print(f"[red]{engine} failed: {res['error']}\n{res.get('log_tail', '')}")
        if not run.keep:
            ens.drop(run.settings)
            run.namespaces.remove(ens)


def _latency(run: _Run, engines: list[str], rates: tuple[int, ...], duration: float,
             warmup: float, share: float, job_set: tuple, model_path: str | None) -> None:
    from bench.latency import LatencyPlan, run_latency
    from bench.probe import probe_threshold, score_sample, write_probe_model

    pairs = run.pairs()
    sample = [v for _k, v in pairs[: min(len(pairs), 50_000)]]
    scores = score_sample(sample, model_path, run.settings.card_token_key.reveal())
    threshold = probe_threshold(scores, share)
    probe = write_probe_model(model_path, threshold, run.out / "probe")
    mode = f"probe: threshold {threshold:.4g} (~{share:.0%} of events alert)"
    run.result["latency_mode"] = {
        "kind": "probe-threshold", "share": share, "threshold": threshold,
        "why": "the model copy alerts on the top share of scores so >= 1,000 samples come "
               "quickly; same graph and weights as the default model",
    }
    plan = LatencyPlan(rates=rates, duration_s=duration, warmup_s=warmup, mode=mode,
                       share=share)
    out = run.result.setdefault("latency", {})
    for engine in engines:
        ens, target = run.engine_target(engine, "lat", bounded=False, model_path=str(probe),
                                        job_set=job_set, peer_batch=500)
        with run.console.status(f"latency {engine}") as status:
            out[engine] = run_latency(
                target, plan, run.settings, pairs, run.out / "logs",
                count_scored=lambda ns=ens: ns.count_rows(run.admin, "scored_transactions"),
                status=lambda msg, st=status: st.update(msg),
            )
        for step in out[engine]:
            run.console.print(f"{engine} @ {step['target_rate']}/s: "
                              f"{step.get('summary') or step.get('error')}")
        if not run.keep:
            ens.drop(run.settings)
            run.namespaces.remove(ens)


def _soak(run: _Run, engines: list[str], rates: dict[str, int | str], duration: float,
          warmup: float, sample_s: float, job_set: tuple, model_path: str | None,
          peer_batch: int) -> None:
    """Memory soak per engine at `rates[engine]` events/s (a str there: why there is none)."""
    from bench.soak import SoakPlan, run_soak

    pairs = run.pairs()
    if "state" not in run.result:
        _state_sizes(run)  # issue 5's other memory figure: per-card state
    out = run.result.setdefault("soak", {})
    for engine in engines:
        engine_rate = rates[engine]
        if isinstance(engine_rate, str):
            out[engine] = {"ok": False, "engine": engine, "verdict": "not run",
                           "error": engine_rate}
            run.console.print(f"[red]soak {engine}: {engine_rate}")
            continue
        plan = SoakPlan(rate=engine_rate, duration_s=duration, warmup_s=warmup,
                        sample_s=sample_s)
        ens, target = run.engine_target(engine, "soak", bounded=False, model_path=model_path,
                                        job_set=job_set, peer_batch=peer_batch)
        with run.console.status(f"soak {engine}") as status:
            res = run_soak(
                target, plan, run.settings, pairs, run.out / "logs",
                count_rows=lambda table, ns=ens: ns.count_rows(run.admin, table),
                status=lambda msg, st=status: st.update(msg),
            )
        out[engine] = res
        slope = res["total"]["summary"]["slope_mib_per_min"]
        run.console.print(
            f"soak {engine} @ {engine_rate}/s: {res['verdict']}; persisted "
            f"{res['persisted']:,} of {res['produced_total']:,}; engine RSS slope "
            f"{'-' if slope is None else f'{slope:.2f}'} MiB/min"
            + (f"; {res['error']}" if res.get("error") else ""))
        if not run.keep:
            ens.drop(run.settings)
            run.namespaces.remove(ens)


def _all_soak_rates(run: _Run, engines: list[str], soak_rate: int) -> dict[str, int | str]:
    """`bench all`: the given rate, else 70 % of each engine's steady rate in this run."""
    from bench.soak_stats import soak_rate as choose

    rates: dict[str, int | str] = {}
    for engine in engines:
        if soak_rate > 0:
            rates[engine] = soak_rate
            continue
        steady = run.result.get("throughput", {}).get(engine, {}).get("steady_events_per_s")
        rates[engine] = (choose(None, steady, 0.7) if steady else
                         "no steady throughput measured in this run; give --soak-rate")
    return rates


def _session(run: _Run, keep: bool, body) -> None:
    """Run `body()`, then always clean up the namespaces and write the (partial) result."""
    try:
        body()
    except KeyboardInterrupt:
        run.result["notes"].append("interrupted by the user: partial result")
        run.console.print("[yellow]interrupted: cleaning up")
    finally:
        run.cleanup(keep)
        from bench.machine import load_average

        run.result["machine"]["load_average_at_end"] = load_average()
        run.write()


def _soak_note() -> str:
    """How soak verdicts are reached, from the defaults every soak of this CLI runs with."""
    from bench.soak import SoakPlan

    return SoakPlan(rate=1).tolerance.method_note(SoakPlan.edge_s)


def _parse_rates(rate: int, sweep: str | None) -> tuple[int, ...]:
    if not sweep:
        return (rate,)
    try:
        return tuple(int(x) for x in sweep.split(",") if x.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"--sweep expects comma-separated integers: {exc}") from exc


def register(app: typer.Typer) -> None:
    """Add the `bench` command group to the fraudstream CLI."""
    bench = typer.Typer(help="Benchmark throughput and latency; see bench/README.")
    app.add_typer(bench, name="bench")

    def _go(kind: str, engine: str, events: int, cards: int, seed: int, rate: int,
            sweep: str | None, duration: float, warmup: float, probe_share: float,
            job_set: list[str] | None, out: Path | None, keep: bool, timeout: float,
            peer_batch: int, model_path: str | None, profile_s: float, soak_s: float,
            soak_rate: int, soak_warmup: float, soak_engine: str | None = None) -> None:
        if soak_s > 0 and kind != "all":
            raise typer.BadParameter("--soak-s belongs to `bench all`; use `bench soak`")
        engines = _engines(engine)
        settings_tuple = _job_settings(job_set)
        run = _Run(out, events, cards, seed)
        run.keep = keep
        run.result["notes"].append(
            "the bench harness (producer, alert consumer, row counting) runs on the same "
            "cores as the engines; other work on the machine shows in the load average"
        )
        if settings_tuple:
            run.result["job_settings"] = dict(settings_tuple)

        def body() -> None:
            if kind in ("throughput", "all"):
                _throughput(run, engines, settings_tuple, timeout, peer_batch, model_path,
                            profile_s)
            if kind in ("latency", "all"):
                _latency(run, engines, _parse_rates(rate, sweep), duration, warmup,
                         probe_share, settings_tuple, model_path)
            if kind == "all" and soak_s > 0:
                run.result["notes"].append(_soak_note())
                soaked = _engines(soak_engine) if soak_engine else engines
                _soak(run, soaked, _all_soak_rates(run, soaked, soak_rate), soak_s,
                      soak_warmup, 5.0, settings_tuple, model_path, peer_batch)

        _session(run, keep, body)

    def make(kind: str):
        def command(
            engine: EngineOpt = "all",
            events: EventsOpt = 1_000_000,
            cards: Annotated[int, typer.Option(help="cards in the generated data")] = 1000,
            seed: Annotated[int, typer.Option(help="generator seed")] = 7,
            rate: Annotated[int, typer.Option(help="latency: events/s produced")] = 5000,
            sweep: Annotated[
                str | None, typer.Option(help="latency: comma list of rates, e.g. 5000,10000")
            ] = None,
            duration: Annotated[float, typer.Option(help="latency: measured s per rate")] = 30.0,
            warmup: Annotated[float, typer.Option(
                help="latency: warm-up s per rate. A fresh Flink job's TaskManagers spend "
                "about 3 minutes compiling (C2 JIT at a quarter of a core each, measured "
                "2026-12-02); 30 s put that in the first measured phase")] = 150.0,
            probe_share: Annotated[
                float, typer.Option(help="latency: share of events the probe model alerts on")
            ] = 0.1,
            job_set: JobSetOpt = None,
            out: Annotated[Path | None, typer.Option(help="result dir")] = None,
            keep: Annotated[bool, typer.Option(help="keep bench topics/schemas")] = False,
            timeout: Annotated[float, typer.Option(help="throughput: s per engine")] = 1800.0,
            peer_batch: Annotated[int, typer.Option(help="peer: max records per poll")] = 2000,
            model_path: Annotated[str | None, typer.Option(help="model (default: registry)")]
            = None,
            profile_s: Annotated[
                float, typer.Option(help="throughput: py-spy the engine for N s (0 = off)")
            ] = 0.0,
            soak_s: Annotated[
                float, typer.Option(help="all: then a memory soak of N s per engine (0 = skip)")
            ] = 0.0,
            soak_rate: Annotated[
                int, typer.Option(help="all: soak events/s (0 = 70 % of the engine's steady "
                                       "throughput measured in the same run)")
            ] = 0,
            soak_warmup: Annotated[
                float, typer.Option(help="all: soak s not judged at the start")
            ] = 60.0,
            soak_engine: Annotated[
                str | None, typer.Option(help="all: engines to soak (default: every engine "
                                              "of the run; a soak is 10+ min each)")
            ] = None,
        ) -> None:
            _go(kind, engine, events, cards, seed, rate, sweep, duration, warmup, probe_share,
                job_set, out, keep, timeout, peer_batch, model_path, profile_s, soak_s,
                soak_rate, soak_warmup, soak_engine)

        command.__doc__ = {
            "throughput": "Preload N txns, run each engine from earliest until all persisted.",
            "latency": "Produce at a fixed rate; alert latency from CreateTime to arrival.",
            "all": "Throughput, then latency (then a memory soak with --soak-s N).",
        }[kind]
        return command

    for kind in ("throughput", "latency", "all"):
        bench.command(kind)(make(kind))

    @bench.command("soak")
    def soak(
        engine: EngineOpt = "all",
        rate: Annotated[
            int | None, typer.Option(help="events/s to produce (70 % of the engine's "
                                          "measured steady throughput)")
        ] = None,
        max_rate: Annotated[
            float | None, typer.Option(help="instead of --rate: the measured steady events/s; "
                                            "the soak runs at --rate-share of it")
        ] = None,
        rate_share: Annotated[float, typer.Option(help="share of --max-rate")] = 0.7,
        duration: Annotated[float, typer.Option(help="s of production at the rate")] = 600.0,
        warmup: Annotated[float, typer.Option(help="first s of the soak not judged")] = 60.0,
        sample_s: Annotated[float, typer.Option(help="s between RSS/row samples")] = 5.0,
        events: Annotated[
            int, typer.Option(help="distinct transactions (cycled with new ids when used up)")
        ] = 200_000,
        cards: Annotated[int, typer.Option(help="cards in the generated data")] = 1000,
        seed: Annotated[int, typer.Option(help="generator seed")] = 7,
        job_set: JobSetOpt = None,
        out: Annotated[Path | None, typer.Option(help="result dir")] = None,
        keep: Annotated[bool, typer.Option(help="keep bench topics/schemas")] = False,
        peer_batch: Annotated[int, typer.Option(help="peer: max records per poll")] = 2000,
        model_path: Annotated[str | None, typer.Option(help="model (default: registry)")]
        = None,
    ) -> None:
        """Produce at a fixed rate for minutes; is every engine process's RSS flat?"""
        from bench.soak_stats import soak_rate

        engines = _engines(engine)
        try:
            chosen = soak_rate(rate, max_rate, rate_share)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        if warmup >= duration:
            raise typer.BadParameter("--warmup must be shorter than --duration")
        settings_tuple = _job_settings(job_set)
        run = _Run(out, events, cards, seed)
        run.keep = keep
        run.result["notes"].append(
            "the bench harness (producer, row counting) runs on the same cores as the engines; "
            "other work on the machine shows in the load average"
        )
        run.result["notes"].append(_soak_note())
        if max_rate is not None and rate is None:
            run.result["notes"].append(
                f"soak rate {chosen}/s = {rate_share:.0%} of the given maximum {max_rate:,.0f}/s")
        if settings_tuple:
            run.result["job_settings"] = dict(settings_tuple)
        _session(run, keep, lambda: _soak(run, engines, dict.fromkeys(engines, chosen),
                                          duration, warmup, sample_s, settings_tuple,
                                          model_path, peer_batch))
