-- Issue 10: least privilege. Replaces 002's table-wide grants of the writer with exactly what
-- the job's Postgres sinks do (connectors/postgres_sinks.py SINK_TABLES, through the COPY sink:
-- COPY into a TEMP staging table, then INSERT ... ON CONFLICT (key) DO UPDATE SET <non-key
-- declared columns>):
--   fraudstream_writer  SELECT on the four tables (Postgres needs it for the conflict target
--                       and the DO UPDATE; the staging table is created AS SELECT ... FROM the
--                       target; tests and the benchmark read with it too), INSERT on exactly
--                       the columns the job writes, UPDATE on exactly the non-key ones, TEMP on
--                       the database. No DELETE, no TRUNCATE, nothing on alerts' review
--                       columns (review_status, label, reviewer, review_note, reviewed_at) nor
--                       on columns filled by defaults (scored_at, created_at, rejected_at).
--   fraudstream_analyst unchanged (002): SELECT, and UPDATE of the review columns only.
-- tests/integration/test_least_privilege.py checks these grants against SINK_TABLES.
REVOKE ALL ON scored_transactions, alerts, rejected_events, aggregates FROM fraudstream_writer;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM fraudstream_writer;
REVOKE ALL ON schema_migrations FROM fraudstream_writer, fraudstream_analyst;

GRANT SELECT ON scored_transactions, alerts, rejected_events, aggregates TO fraudstream_writer;

GRANT INSERT (transaction_id, card_token, card_last4, event_time, amount, merchant, category,
              score, decision, reasons, features, model_version, is_late, source_partition,
              source_offset),
      UPDATE (card_token, card_last4, event_time, amount, merchant, category, score, decision,
              reasons, features, model_version, is_late, source_partition, source_offset)
    ON scored_transactions TO fraudstream_writer;

GRANT INSERT (transaction_id, card_token, card_masked, event_time, amount, merchant, category,
              score, threshold, reasons, features, model_version, is_late),
      UPDATE (card_token, card_masked, event_time, amount, merchant, category, score,
              threshold, reasons, features, model_version, is_late)
    ON alerts TO fraudstream_writer;

GRANT INSERT (source_topic, source_partition, source_offset, reason, field, raw_payload,
              payload_bytes, raw_bytes, raw_exact),
      UPDATE (reason, field, raw_payload, payload_bytes, raw_bytes, raw_exact)
    ON rejected_events TO fraudstream_writer;

GRANT INSERT (window_start, window_end, dimension, key, txn_count, amount_sum, alert_count,
              mean_score),
      UPDATE (window_end, txn_count, amount_sum, alert_count, mean_score)
    ON aggregates TO fraudstream_writer;

-- Tables and sequences of later migrations: the writer may read them; what it may write is
-- granted column by column in the migration that creates them.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES FROM fraudstream_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE ALL ON SEQUENCES FROM fraudstream_writer;

-- Temporary tables: only the writer's staging tables need them (Postgres grants TEMP on every
-- database to PUBLIC by default).
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO fraudstream_writer', current_database());
END
$$;
