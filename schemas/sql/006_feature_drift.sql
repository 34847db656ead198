-- Drift monitoring: the population stability index (models/drift.py) of every model input
-- feature and of the score, per hour of event time and model version, against the reference
-- distributions stored with the model (metadata.json `drift_reference`). Written by
-- `fraudstream drift compute|watch` (connectors/drift_store.py) with an upsert, so recomputing
-- an hour replaces its rows. `feature` is a feature name or 'score'; `rows` is the number of
-- scored events with a value for it in that hour (PSI over few rows is biased upwards).
CREATE TABLE IF NOT EXISTS feature_drift (
    hour          timestamptz NOT NULL,
    model_version text NOT NULL,
    feature       text NOT NULL,
    psi           double precision NOT NULL CHECK (psi >= 0),
    rows          bigint NOT NULL CHECK (rows > 0),
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hour, model_version, feature),
    CHECK (hour = date_trunc('hour', hour, 'UTC'))
);
-- the latest hour per (model_version, feature): Prometheus gauges, the report
CREATE INDEX IF NOT EXISTS feature_drift_latest ON feature_drift (model_version, feature, hour);

-- Least privilege (see 004, 005): the writer role computes drift, so it reads the table,
-- inserts the declared columns and updates the non-key ones; the analyst reads.
GRANT SELECT ON feature_drift TO fraudstream_writer, fraudstream_analyst;
GRANT INSERT (hour, model_version, feature, psi, rows, computed_at),
      UPDATE (psi, rows, computed_at)
    ON feature_drift TO fraudstream_writer;
