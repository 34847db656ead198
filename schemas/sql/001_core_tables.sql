-- fraudstream core tables. Applied once by the migration runner (deploy/local), tracked in
-- schema_migrations. Every table the job writes has a primary key so the Flink JDBC sink
-- upserts (INSERT ... ON CONFLICT DO UPDATE) and replays change nothing.

CREATE TABLE IF NOT EXISTS scored_transactions (
    transaction_id   text PRIMARY KEY,
    card_token       text NOT NULL,
    card_last4       text NOT NULL,
    event_time       timestamptz NOT NULL,
    amount           double precision NOT NULL,
    merchant         text NOT NULL,
    category         text NOT NULL,
    score            double precision NOT NULL,
    decision         text NOT NULL,            -- 'alert' | 'pass'
    reasons          jsonb NOT NULL,           -- [{"code": ..., "feature": ..., "value": ...}]
    features         jsonb NOT NULL,           -- {feature_name: value} as computed online
    model_version    text NOT NULL,
    is_late          boolean NOT NULL DEFAULT false,
    source_partition integer,
    source_offset    bigint,
    scored_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS scored_transactions_event_time ON scored_transactions (event_time);

-- Review columns (review_status .. reviewed_at) are never written by the job: its upsert
-- names only the scoring columns, so a replay cannot overwrite a reviewer's label.
CREATE TABLE IF NOT EXISTS alerts (
    transaction_id   text PRIMARY KEY,
    card_token       text NOT NULL,
    card_masked      text NOT NULL,
    event_time       timestamptz NOT NULL,
    amount           double precision NOT NULL,
    merchant         text NOT NULL,
    category         text NOT NULL,
    score            double precision NOT NULL,
    threshold        double precision NOT NULL,
    reasons          jsonb NOT NULL,
    features         jsonb NOT NULL,
    model_version    text NOT NULL,
    is_late          boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    review_status    text NOT NULL DEFAULT 'open'
                     CHECK (review_status IN ('open', 'in_review', 'closed')),
    label            text CHECK (label IN ('fraud', 'legit')),
    reviewer         text,
    review_note      text,
    reviewed_at      timestamptz
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (review_status, event_time);

CREATE TABLE IF NOT EXISTS rejected_events (
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    reason           text NOT NULL,
    field            text,
    raw_payload      text NOT NULL,            -- truncated to a bounded size, see payload_bytes
    payload_bytes    integer NOT NULL,
    rejected_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_topic, source_partition, source_offset)
);

CREATE TABLE IF NOT EXISTS aggregates (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,            -- 'category' | 'merchant'
    key              text NOT NULL,
    txn_count        bigint NOT NULL,
    amount_sum       double precision NOT NULL,
    alert_count      bigint NOT NULL,
    mean_score       double precision NOT NULL,
    PRIMARY KEY (window_start, dimension, key)
);
