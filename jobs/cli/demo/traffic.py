"""The demo's traffic: generated transactions with planted fraud, produced to the run's topic,
then a few malformed records to show the dead-letter path."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.progress import MofNCompleteColumn, Progress

from connectors.kafka_logs import client_config
from jobs.cli.demo.context import DemoRun
from jobs.cli.demo.plan import MALFORMED_RECORDS, DemoError, episode_share


@dataclass(frozen=True, slots=True)
class Traffic:
    records: list[Any]  # schemas.transaction.Transaction, in production order
    run_ids: frozenset[str]
    fraud_ids: frozenset[str]  # the planted frauds among them


def generate_traffic(run: DemoRun) -> Traffic:
    """Generate the run's transactions in memory (the default size is a few tens of thousands),
    so the live view knows the run's ids and planted frauds before anything is produced."""
    from models.data.generator import GeneratorConfig, generate  # noqa: PLC0415
    from schemas.card_token import CardTokenizer  # noqa: PLC0415

    config = run.config
    run.console.print(f"[bold]2/4[/] generating {config.cards} cards x {config.days} days "
                      f"(seed {run.seed}) ...")
    gen_cfg = GeneratorConfig(cards=config.cards, days=config.days, seed=run.seed,
                              start=config.start,
                              episode_card_share=episode_share(config.days, config.cards))
    tokenizer = CardTokenizer(run.settings.card_token_key.reveal().encode())
    records = list(generate(gen_cfg, tokenizer))
    return Traffic(records=records,
                   run_ids=frozenset(r.transaction_id for r in records),
                   fraud_ids=frozenset(r.transaction_id for r in records if r.label == 1))


def produce_before_job(run: DemoRun, traffic: Traffic) -> None:
    """Produce everything with a progress bar (a bounded job reads up to the offsets that exist
    when it starts). Ctrl-C (`run.stop`) ends it early."""
    run.stats.phase = "producing"
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=run.console,
                  transient=True) as progress:
        task = progress.add_task("producing", total=len(traffic.records))
        count = _counter(run)

        def count_and_show(sent_since_last: int) -> None:
            count(sent_since_last)
            progress.advance(task, sent_since_last)

        send_traffic(run, traffic, count_and_show)


class BackgroundSender(threading.Thread):
    """Produces the traffic while an unbounded job runs, so the live rate is real time. An
    error stops the run (`run.stop`) and is kept in `error` for the summary."""

    def __init__(self, run: DemoRun, traffic: Traffic) -> None:
        super().__init__(name="demo-producer", daemon=True)
        self._run = run
        self._traffic = traffic
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            send_traffic(self._run, self._traffic, _counter(self._run))
        except BaseException as exc:  # reported after the live view ends
            self.error = exc
            self._run.stop.set()


def send_traffic(run: DemoRun, traffic: Traffic, on_progress: Callable[[int], None]) -> None:
    """All generated records, then the malformed ones (to show the dead-letter path)."""
    from confluent_kafka import Producer  # noqa: PLC0415

    delivery = _produce(run, traffic.records, on_progress)
    bad = Producer(client_config({"bootstrap.servers": run.settings.kafka_bootstrap}))
    for payload in MALFORMED_RECORDS:
        bad.produce(run.source_topic, payload)
    bad.flush(10)
    with run.lock:
        run.stats.produced = delivery.sent
        run.stats.malformed_sent = len(MALFORMED_RECORDS)


def _counter(run: DemoRun) -> Callable[[int], None]:
    def count(sent_since_last: int) -> None:
        with run.lock:
            run.stats.produced += sent_since_last

    return count


def _produce(run: DemoRun, records: Iterable[Any], on_progress: Callable[[int], None]) -> Any:
    """Produce transactions with the project's producer; Ctrl-C (`run.stop`) ends it early.

    Returns its `DeliveryStats`; DemoError if any message was not delivered.
    """
    from connectors.kafka_producer import ProducerConfig, produce_transactions  # noqa: PLC0415

    def until_stopped() -> Iterable[Any]:
        for record in records:
            if run.stop.is_set():
                return
            yield record

    topic = run.source_topic
    producer_config = ProducerConfig(bootstrap=run.settings.kafka_bootstrap, topic=topic,
                                     rate=run.config.rate)
    delivery = produce_transactions(until_stopped(), producer_config, on_progress=on_progress)
    if delivery.failed:
        raise DemoError(f"{delivery.failed} transactions were not delivered to {topic}: "
                        f"{dict(delivery.errors)}")
    return delivery
