-- Retraining from analyst labels (issue 14.3): every scored transaction keeps what training
-- needs beyond 001's columns, so `fraudstream train --labels` rebuilds the very record the job
-- scored from its row (models/training/labels.py `transaction_from_row`) and replays each card's
-- features over it: merchant and home coordinates (distance, speed), city_pop, the card
-- holder's gender, birth_year, zip and state, and `label`, the ground truth the record carried
-- (generator, labelled replay; NULL when the producer does not know it, as shadow_scores.label
-- in 005). No card number: card_token and card_last4 (001) identify the card.
-- Written by the job's existing `pg_scored_transactions` sink (connectors/postgres_sinks.py
-- SINK_TABLES) from the scored row (connectors/rows.py SCORED_FIELDS). Nullable: rows written
-- before this migration have none; the rebuild skips and counts them.
ALTER TABLE scored_transactions
    ADD COLUMN IF NOT EXISTS merchant_lat  double precision,
    ADD COLUMN IF NOT EXISTS merchant_long double precision,
    ADD COLUMN IF NOT EXISTS home_lat      double precision,
    ADD COLUMN IF NOT EXISTS home_long     double precision,
    ADD COLUMN IF NOT EXISTS city_pop      integer,
    ADD COLUMN IF NOT EXISTS gender        text,
    ADD COLUMN IF NOT EXISTS birth_year    integer,
    ADD COLUMN IF NOT EXISTS zip           text,
    ADD COLUMN IF NOT EXISTS state         text,
    ADD COLUMN IF NOT EXISTS label         smallint CHECK (label IN (0, 1));

-- Least privilege (see 004, 005): the writer inserts and updates exactly the new columns its
-- sink declares (none is a key); SELECT on the table (writer, analyst) already covers them.
GRANT INSERT (merchant_lat, merchant_long, home_lat, home_long, city_pop, gender, birth_year,
              zip, state, label),
      UPDATE (merchant_lat, merchant_long, home_lat, home_long, city_pop, gender, birth_year,
              zip, state, label)
    ON scored_transactions TO fraudstream_writer;
