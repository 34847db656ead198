"""Memory-soak arithmetic (bench/soak_stats.py) and how a soak result is assembled and shown.

No stack, no clocks: samples are made up with known slopes and shapes.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.soak_stats import (
    MIB,
    Tolerance,
    in_window,
    kept_up,
    soak_rate,
    soak_verdict,
    sum_series,
    summarize_rss,
)


def series(start_mib: float, mib_per_min: float, seconds: float = 600.0, step: float = 5.0,
           t0: float = 0.0) -> list[tuple[float, float]]:
    """RSS samples growing linearly from `start_mib` at `mib_per_min`, every `step` s."""
    n = int((seconds - t0) / step) + 1
    return [(t0 + i * step, (start_mib + mib_per_min * (t0 + i * step) / 60.0) * MIB)
            for i in range(n)]


def test_slope_in_mib_per_minute_on_known_data():
    s = summarize_rss(series(100.0, 2.0), warmup_s=60.0, end_s=600.0)
    assert s.slope_mib_per_min == pytest.approx(2.0)
    assert s.samples == 109  # t = 60, 65, ..., 600
    assert not s.flat
    assert "slope 2.00 MiB/min" in s.reason


def test_flat_memory_is_flat():
    s = summarize_rss(series(150.0, 0.0), warmup_s=60.0, end_s=600.0)
    assert s.flat
    assert s.slope_mib_per_min == pytest.approx(0.0)
    assert s.growth_bytes == pytest.approx(0.0)
    assert s.start_bytes == s.end_bytes == s.peak_bytes == pytest.approx(150.0 * MIB)


def test_start_and_end_are_medians_of_the_window_edges():
    samples = series(100.0, 0.0)
    # One GC-phase spike right at the start of the window and one at the very end.
    samples = [(t, v + (40 * MIB if t in (60.0, 600.0) else 0)) for t, v in samples]
    s = summarize_rss(samples, warmup_s=60.0, end_s=600.0, edge_s=30.0)
    assert s.start_bytes == pytest.approx(100.0 * MIB)
    assert s.end_bytes == pytest.approx(100.0 * MIB)
    assert s.peak_bytes == pytest.approx(140.0 * MIB)
    assert s.flat


def test_warmup_is_excluded():
    # Heap and buffers fill in the first minute (+200 MiB), then nothing grows.
    samples = [(t, (100.0 + 200.0 * min(t, 60.0) / 60.0) * MIB) for t, _ in series(0, 0)]
    judged = summarize_rss(samples, warmup_s=60.0, end_s=600.0)
    assert judged.flat
    assert judged.start_bytes == pytest.approx(300.0 * MIB)
    unjudged = summarize_rss(samples, warmup_s=0.0, end_s=600.0)
    assert not unjudged.flat
    # start = median of t = 0..30 s (150 MiB), end 300 MiB
    assert unjudged.growth_share == pytest.approx(1.0)


def test_samples_outside_the_soak_are_not_judged():
    soak = series(100.0, 0.0)
    startup = [(-30.0, 10.0 * MIB), (-5.0, 50.0 * MIB)]
    stop = [(605.0, 900.0 * MIB)]  # the clean stop, after production ended
    s = summarize_rss(startup + soak + stop, warmup_s=60.0, end_s=600.0)
    assert s.flat
    assert s.peak_bytes == pytest.approx(100.0 * MIB)
    assert [t for t, _ in in_window(startup + soak + stop, 60.0, 600.0)][-1] == 600.0


def test_growth_share_limit_alone_makes_it_growing():
    # 0.9 MiB/min is under the slope limit, but the window grows 7.6 %: edge medians at
    # t = 75 s (101.125 MiB) and t = 585 s (108.775 MiB).
    s = summarize_rss(series(100.0, 0.9), warmup_s=60.0, end_s=600.0)
    assert s.slope_mib_per_min == pytest.approx(0.9)
    assert s.start_bytes == pytest.approx(101.125 * MIB)
    assert s.end_bytes == pytest.approx(108.775 * MIB)
    assert s.growth_share == pytest.approx(7.65 / 101.125)
    assert not s.flat
    assert "grew" in s.reason and "slope" not in s.reason


def test_slope_limit_alone_makes_a_large_process_growing():
    # A 2 GiB JVM growing 1.5 MiB/min: +0.7 % over the window, but a leak all the same.
    s = summarize_rss(series(2048.0, 1.5), warmup_s=60.0, end_s=600.0)
    assert s.growth_share < 0.05
    assert not s.flat
    assert "slope" in s.reason


def test_too_few_samples_is_never_flat():
    s = summarize_rss([(100.0, MIB), (200.0, MIB)], warmup_s=60.0, end_s=600.0)
    assert not s.flat
    assert s.samples == 2
    assert s.slope_mib_per_min is None


def test_sum_series_adds_processes_sampled_in_the_same_sweep():
    jvm = [(0.0, 1000.0), (5.0, 1010.0), (10.0, 1020.0)]
    client = [(0.0, 200.0), (5.0, 200.0)]  # exited before the last sweep
    assert sum_series([jvm, client]) == [(0.0, 1200.0), (5.0, 1210.0), (10.0, 1020.0)]


def test_kept_up_needs_95_percent_persisted():
    assert kept_up(100_000, 95_000)
    assert not kept_up(100_000, 94_999)
    assert not kept_up(0, 0)


def _verdict(produced: int, persisted: int, *procs: list[tuple[float, float]]) -> str:
    summaries = [summarize_rss(p, 60.0, 600.0) for p in procs]
    total = summarize_rss(sum_series(procs), 60.0, 600.0)
    return soak_verdict(total, summaries, produced, persisted)


def test_verdict_flat_when_kept_up_and_flat():
    assert _verdict(1_000, 1_000, series(150.0, 0.0), series(1000.0, 0.1)) == "flat"


def test_verdict_growing_when_one_process_grows():
    assert _verdict(1_000, 1_000, series(150.0, 0.0), series(1000.0, 3.0)) == "growing"


def test_stalled_engine_with_flat_memory_is_not_flat():
    # Memory is perfectly flat because the engine stopped working at half the events.
    assert _verdict(1_000_000, 500_000, series(150.0, 0.0)) == "not kept up"


def test_failed_engine_verdict_names_the_failure():
    flat = summarize_rss(series(150.0, 0.0), 60.0, 600.0)
    verdict = soak_verdict(flat, [flat], 1_000, 1_000, error="engine exited with code 1")
    assert verdict == "failed: engine exited with code 1"


def test_short_lived_helper_process_does_not_decide_but_the_sum_does():
    helper = [(300.0, 30.0 * MIB)]  # one sample: a transient child
    assert _verdict(1_000, 1_000, series(150.0, 0.0), helper) == "flat"
    summaries = [summarize_rss(helper, 60.0, 600.0)]
    assert soak_verdict(summarize_rss(helper, 60.0, 600.0), summaries, 1_000, 1_000) == (
        "too few samples"
    )


def test_tolerance_is_configurable():
    loose = Tolerance(growth_share=0.5, slope_mib_per_min=5.0)
    assert summarize_rss(series(100.0, 2.0), 60.0, 600.0, tolerance=loose).flat
    assert not summarize_rss(series(100.0, 2.0), 60.0, 600.0).flat


def test_soak_rate_explicit_or_share_of_measured_maximum():
    assert soak_rate(2000, None) == 2000
    assert soak_rate(2000, 9999.0) == 2000  # an explicit rate wins
    assert soak_rate(None, 3059.0) == 2141  # 70 % of the peer's measured steady rate
    assert soak_rate(None, 547.0, 0.5) == 274
    with pytest.raises(ValueError):
        soak_rate(None, None)
    with pytest.raises(ValueError):
        soak_rate(None, 1000.0, 1.5)
    with pytest.raises(ValueError):
        soak_rate(0, None)


def test_soak_plan_needs_a_measured_window():
    from bench.soak import SoakPlan

    with pytest.raises(ValueError):
        SoakPlan(rate=100, duration_s=60.0, warmup_s=60.0)
    with pytest.raises(ValueError):
        SoakPlan(rate=0)


def _fake_run(tmp_path: Path, jvm_slope: float, persisted: int):
    """A monitor/sampler/engine as `run_soak` leaves them, with made-up samples."""
    from bench.procmon import ProcessRecord
    from bench.stats import CpuSample

    # Monitor started 100 s (monotonic) before the soak began at 1100; samples in monitor time.
    monitor = SimpleNamespace(started_at=1000.0, records=lambda: [
        ProcessRecord(pid=11, group="engine", name="java", first_cpu=None,
                      last_cpu=CpuSample(5.0, 1.0), peak_rss_bytes=0,
                      rss_series=[(t + 100.0, v) for t, v in series(900.0, jvm_slope, t0=-90)]),
        ProcessRecord(pid=10, group="engine", name="python -m jobs.cli", first_cpu=None,
                      last_cpu=CpuSample(1.0, 0.0), peak_rss_bytes=0,
                      rss_series=[(t + 100.0, v) for t, v in series(190.0, 0.0, t0=-90)]),
    ])
    sampler = SimpleNamespace(points=[(1100.0 + t, int(t * 100)) for t in range(0, 601, 5)],
                              latest=persisted, error=None)
    engine = SimpleNamespace(exited=lambda: -15, log_path=tmp_path / "engine.log",
                             log_tail=lambda: "")
    target = SimpleNamespace(engine="flink-mini", job_settings=())
    return monitor, sampler, engine, target


@pytest.mark.parametrize(("jvm_slope", "persisted", "verdict"), [
    (0.0, 60_200, "flat"),
    (4.0, 60_200, "growing"),
    (0.0, 30_000, "not kept up"),
])
def test_soak_result_aligns_samples_to_the_soak_and_judges(tmp_path, jvm_slope, persisted,
                                                            verdict):
    from bench.soak import SoakPlan, soak_result

    monitor, sampler, engine, target = _fake_run(tmp_path, jvm_slope, persisted)
    plan = SoakPlan(rate=100, duration_s=600.0, warmup_s=60.0)
    counts = {"persisted": persisted, "alerts": 400, "startup_s": 90.0}
    res = soak_result(target, plan, monitor, sampler, engine, origin=1100.0, soaked=True,
                      produced_total=60_200, sent=60_000, secs=600.0, counts=counts, error=None)
    assert res["verdict"] == verdict
    assert res["ok"] is True
    assert res["achieved_rate"] == pytest.approx(100.0)
    assert res["kept_up"] is (persisted >= 0.95 * 60_200)
    java = next(p for p in res["processes"] if p["pid"] == 11)
    assert java["samples"][0][0] == pytest.approx(-90.0)  # start-up kept, in soak time
    assert java["summary"]["slope_mib_per_min"] == pytest.approx(jvm_slope, abs=1e-9)
    assert res["total"]["summary"]["start_bytes"] == pytest.approx((900 + 190 + jvm_slope)
                                                                   * MIB, rel=0.01)
    assert res["persist_rate_in_window"] == pytest.approx(100.0)
    assert res["rows"][0] == (0.0, 0)


def test_markdown_soak_section_shows_the_json_figures(tmp_path):
    from bench.report import render_markdown
    from bench.soak import SoakPlan, soak_result

    monitor, sampler, engine, target = _fake_run(tmp_path, 4.0, 60_200)
    res = soak_result(target, SoakPlan(rate=100), monitor, sampler, engine, origin=1100.0,
                      soaked=True, produced_total=60_200, sent=60_000, secs=600.0,
                      counts={"persisted": 60_200, "alerts": 400}, error=None)
    result = {"stamp": "s", "command": "fraudstream bench soak", "notes": [],
              "machine": {"cpu_model": "x", "cores": 2, "python": "3.12"},
              "soak": {"flink-mini": res,
                       "python": {"ok": False, "engine": "python", "verdict": "not run",
                                  "error": "no steady throughput measured in this run"}}}
    md = render_markdown(result)
    assert "## Memory soak" in md
    assert "| flink-mini | 100 (100) | 60-600 | 60,200 | 60,200 (100.0 %) | 400 " in md
    # start/end: medians of the first/last 30 s, t = 75 s and 585 s: 900 + 4 * t / 60 MiB
    assert "| java (pid 11) | 905 | 939 | 940 | +3.8 % | 4.00 | slope 4.00 MiB/min" in md
    assert "| all engine processes |" in md and "| growing |" in md
    assert "not run: no steady throughput measured in this run" in md


def test_bench_all_soaks_at_70_percent_of_the_same_runs_steady_rate():
    from bench.cli import _all_soak_rates

    run = SimpleNamespace(result={"throughput": {
        "python": {"ok": True, "steady_events_per_s": 3059.0},
        "flink-mini": {"ok": False, "error": "timeout"},
    }})
    rates = _all_soak_rates(run, ["python", "flink-mini"], 0)
    assert rates["python"] == 2141
    assert isinstance(rates["flink-mini"], str)
    assert _all_soak_rates(run, ["python", "flink-mini"], 500) == {"python": 500,
                                                                   "flink-mini": 500}


def test_method_note_states_the_limits_the_verdict_uses():
    from bench.soak_stats import Tolerance

    note = Tolerance(growth_share=0.1, slope_mib_per_min=2.5,
                     min_persisted_share=0.9).method_note(edge_s=20)
    assert "first/last 20 s" in note
    assert "growth < 10 % of the start RSS" in note
    assert "slope < 2.5 MiB/min" in note
    assert "persisted >= 90 % of the events" in note
