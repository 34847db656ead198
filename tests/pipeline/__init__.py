"""The pipeline tier: the real job graph (`jobs.scoring_job.build_pipeline`) on an embedded
MiniCluster, fed from memory and collected back; no Kafka, Postgres or Flink cluster needed.

Known hazard, observed while building it (2026-12-02, PyFlink 2.2.1, pemja 0.5.7): a Python
function chained AFTER the scorer in the same task (e.g. a `map` on `Outputs.scored` used as a
test sink) made the job hang for good in `ScoreShard.open`, inside onnxruntime's first
import (its pybind11 extension), twice out of two runs; without it, never. Likely cause: two
embedded-Python thread states on one task thread confuse pybind11's `PyGILState_Ensure`. The
harness therefore collects with Java sinks only (`collectAsync`).
"""
