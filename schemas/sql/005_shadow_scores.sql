-- Shadow scoring: a challenger model scores the same events as the champion; its verdicts go
-- here, never to the alerts topic. One row per event and challenger version, written by the
-- job's `pg_shadow_scores` sink (connectors/postgres_sinks.py) with the champion's verdict
-- beside it, so `fraudstream model compare` reads one table. `label` is the ground truth the
-- record carried (generator, labelled replay), NULL when the producer does not know it.
CREATE TABLE IF NOT EXISTS shadow_scores (
    transaction_id     text NOT NULL,
    challenger_version text NOT NULL,
    event_time         timestamptz NOT NULL,
    amount             double precision NOT NULL,
    champion_version   text NOT NULL,
    champion_score     double precision NOT NULL,
    champion_alert     boolean NOT NULL,
    challenger_score   double precision NOT NULL,
    challenger_alert   boolean NOT NULL,
    label              smallint CHECK (label IN (0, 1)),
    scored_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (transaction_id, challenger_version)
);
CREATE INDEX IF NOT EXISTS shadow_scores_by_time ON shadow_scores (challenger_version, event_time);

-- Least privilege (see 004): the writer reads, inserts the declared columns and updates the
-- non-key ones; the analyst reads.
GRANT SELECT ON shadow_scores TO fraudstream_writer, fraudstream_analyst;
GRANT INSERT (transaction_id, challenger_version, event_time, amount, champion_version,
              champion_score, champion_alert, challenger_score, challenger_alert, label),
      UPDATE (event_time, amount, champion_version, champion_score, champion_alert,
              challenger_score, challenger_alert, label)
    ON shadow_scores TO fraudstream_writer;
