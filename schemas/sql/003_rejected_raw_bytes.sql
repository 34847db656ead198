-- Issue 10: a refused record's payload kept as bytes, so no byte sequence (NUL, invalid UTF-8,
-- any encoding) can make Postgres refuse the dead-letter row, and nothing is lost to decoding.
--   raw_bytes  the Kafka record value (NULL for a tombstone and for rows written before this
--              migration), with ONE exception, the card-number rule (no card number in clear
--              past ingestion): every PAN-like run of 12+ ASCII digits (single spaces or
--              dashes allowed between digits) is replaced by the bytes '[REDACTED-PAN]'.
--              At most 1 MiB (schemas.dead_letter.RAW_MAX_BYTES), the first 1 MiB of a bigger
--              record: Kafka's default limits keep every record of a default topic within it.
--   raw_exact  true when raw_bytes is byte for byte the Kafka record value (nothing redacted,
--              nothing cut); false points to source_topic/partition/offset for the original.
-- raw_payload stays the readable preview: redacted, cut to the job's dlq_max_payload_bytes,
-- invalid UTF-8 shown as \xNN and control characters other than TAB/LF/CR escaped.
ALTER TABLE rejected_events ADD COLUMN IF NOT EXISTS raw_bytes bytea;
ALTER TABLE rejected_events ADD COLUMN IF NOT EXISTS raw_exact boolean;
COMMENT ON COLUMN rejected_events.raw_bytes IS
    'record value as bytes; PAN-like digit runs replaced by [REDACTED-PAN]; first 1 MiB';
COMMENT ON COLUMN rejected_events.raw_exact IS
    'raw_bytes equals the Kafka record value byte for byte (nothing redacted or cut)';
