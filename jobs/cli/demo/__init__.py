"""`fraudstream demo`: the README's one-command demo, end to end on the local stack.

Steps (`run.run_demo`; each says what is missing if it cannot run):
1. Preflight: the default model the job loads must exist (`preflight`).
2. Stack up without a Flink cluster (`deploy.local.stack.ensure_up`): Kafka and Postgres.
3. A fresh source topic for this run (`fraudstream-demo-<run id>`, deleted when the run ends),
   so a bounded job reads exactly this run's traffic; the job's usual DLQ / alerts topics and
   tables receive the results (`topics`).
4. Generated traffic with planted fraud episodes (plus a few malformed records, to show the
   dead-letter path) produced to that topic at `rate` per second: before the job starts
   (bounded), or while it runs (`keep_running`, unbounded job) (`traffic`).
5. The scoring job on the embedded MiniCluster as a subprocess (`fraudstream run`, its own
   session so stopping it reaches its JVM), logs to `<home>/logs/demo-<run id>.log` (`job`).
6. A live view (rich Live): events/s scored and scored so far (Postgres, `counters`), alerts
   and planted frauds caught (alerts topic, only this run's transactions, `watcher`), DLQ
   records, latest alerts with reasons; it ends when the bounded job finishes, or on Ctrl-C
   with `keep_running` (`live`, drawn by `view`).
7. A summary (exact per-run counts, recall/precision on the planted fraud) and the commands
   to look further; on failure the job's root cause and the log tail.

`plan` and `view` are pure (everything is a parameter) and unit-tested; `command` is the typer
layer.
"""
