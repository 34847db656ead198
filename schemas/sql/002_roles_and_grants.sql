-- Privileges of the two application roles. The login roles themselves (with passwords) are
-- created by the deployer (`fraudstream up` locally); they are created NOLOGIN here when
-- missing so this migration also applies on a database prepared by hand.
--   fraudstream_writer  : the Flink job. Reads and writes the job tables.
--   fraudstream_analyst : fraud reviewers. Read-only, except the review columns of alerts.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fraudstream_writer') THEN
        CREATE ROLE fraudstream_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fraudstream_analyst') THEN
        CREATE ROLE fraudstream_analyst NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO fraudstream_writer, fraudstream_analyst;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON scored_transactions, alerts, rejected_events, aggregates TO fraudstream_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO fraudstream_writer;

GRANT SELECT ON scored_transactions, alerts, rejected_events, aggregates TO fraudstream_analyst;
GRANT UPDATE (review_status, label, reviewer, review_note, reviewed_at)
    ON alerts TO fraudstream_analyst;

-- Tables created by later migrations (run by the same migration owner) get the same baseline:
-- writer reads/writes, analyst reads. Column grants for new review fields go in their migration.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO fraudstream_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO fraudstream_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT ON TABLES TO fraudstream_analyst;
