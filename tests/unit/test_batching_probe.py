"""Pure helpers of the batching probe (`bench/batching_probe.py`); no JVM is started."""

from __future__ import annotations

import os

import pytest

from bench import batching_probe as bp


def test_parse_variants_accepts_letters_and_names_in_order_without_repeats():
    assert bp.parse_variants("a,b,c,d") == ["a", "b", "c", "d"]
    assert bp.parse_variants(" micro-batch , a,c ") == ["c", "a"]
    assert bp.parse_variants("PANDAS-UDF") == ["d"]
    with pytest.raises(ValueError, match="unknown variant 'e'"):
        bp.parse_variants("a,e")
    with pytest.raises(ValueError, match="no variant"):
        bp.parse_variants(" , ")


def test_parse_proc_stat_reads_ppid_and_all_four_cpu_counters():
    # comm with a space and a ')' inside; fields 14..17 = utime, stime, cutime, cstime.
    fields = ["S", "41"] + ["0"] * 9 + ["100", "20", "3", "4"] + ["0"] * 30
    raw = "4242 (java ) x) " + " ".join(fields)
    assert bp.parse_proc_stat(raw) == (41, 127)


def test_parse_proc_stat_of_this_process():
    with open(f"/proc/{os.getpid()}/stat") as fh:
        ppid, ticks = bp.parse_proc_stat(fh.read())
    assert ppid == os.getppid()
    assert ticks >= 0


def test_descendants_walks_the_whole_tree_below_root_only():
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 21: 20}
    assert bp.descendants(parents, 10) == {11, 12, 13}
    assert bp.descendants(parents, 12) == set()
    assert bp.descendants(parents, 99) == set()


def test_cpu_at_interpolates_and_clamps():
    samples = [(10.0, 1.0), (11.0, 3.0), (13.0, 4.0)]
    assert bp.cpu_at(samples, 10.5) == pytest.approx(2.0)
    assert bp.cpu_at(samples, 12.0) == pytest.approx(3.5)
    assert bp.cpu_at(samples, 5.0) == 1.0
    assert bp.cpu_at(samples, 99.0) == 4.0
    assert bp.cpu_at([], 1.0) is None


def test_derive_figures_per_1k_rows_lost_rows_and_steady_rate():
    raw = {
        "rows": 20_000, "rows_in_python": 19_000, "python_calls": 95,
        "job_wall_s": 10.0, "job_cpu_s": 12.0, "total_wall_s": 20.0, "total_cpu_s": 24.0,
        "steady_wall_s": 0.5, "steady_cpu_s": 0.95,
    }
    out = bp.derive_figures(raw)
    assert out["lost_rows"] == 1_000
    assert out["mean_batch"] == 200.0
    assert out["job_cpu_s_per_1k"] == pytest.approx(0.6)
    assert out["job_wall_s_per_1k"] == pytest.approx(0.5)
    assert out["total_cpu_s_per_1k"] == pytest.approx(1.2)
    assert out["job_rows_per_s"] == 2_000
    assert out["steady_rows_per_s"] == 38_000
    assert out["steady_cpu_s_per_1k"] == pytest.approx(0.05)


def test_derive_figures_with_unknown_counts():
    out = bp.derive_figures({"rows": 10, "rows_in_python": None, "python_calls": None})
    assert out["lost_rows"] is None
    assert out["mean_batch"] is None
    assert out["job_cpu_s_per_1k"] is None
    assert out["steady_rows_per_s"] is None


def test_table_shows_failures_and_unknowns():
    ok = bp.derive_figures({"rows": 1000, "rows_in_python": 1000, "python_calls": None,
                            "job_wall_s": 2.0, "job_cpu_s": 3.0})
    ok["name"] = "pandas-udf"
    failed = {"name": "micro-batch", "error": "exit 1"}
    text = bp.plain_table([ok, failed])
    lines = text.splitlines()
    assert len(lines) == 3
    assert "pandas-udf" in lines[1] and "1,000" in lines[1] and " - " in lines[1]
    assert "FAILED" in lines[2]


def test_sql_texts_name_the_requested_sizes():
    ddl = bp.source_ddl("src", 1234, 300, 10**9)
    assert "'number-of-rows' = '1234'" in ddl and "'fields.id.end' = '1234'" in ddl
    assert "'fields.payload.length' = '300'" in ddl
    assert "'rows-per-second' = '1000000000'" in ddl
    batched = bp.count_sql("v", "f0", calls=True)
    assert "SUM(f0) AS rows_in_python" in batched and "COUNT(*) AS python_calls" in batched
    per_row_udf = bp.count_sql("v", "n", calls=False)
    assert "COUNT(n) AS rows_in_python" in per_row_udf
    assert "TUMBLE" not in batched  # no window: the last update comes after every record


def test_tree_cpu_counts_this_process():
    before = bp.tree_cpu_s()
    sum(i * i for i in range(200_000))
    assert bp.tree_cpu_s() >= before > 0
