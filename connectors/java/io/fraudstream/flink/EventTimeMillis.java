package io.fraudstream.flink;

import java.time.OffsetDateTime;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Pattern;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The event time of a raw transaction payload, for the source's per-partition WATERMARKS only.
 *
 * <p>Contract: returns the epoch milliseconds (whole seconds) of the top-level {@code
 * event_time} of a schema-v1 JSON object when it is a strictly formed RFC 3339 time (year
 * 1990-2099, valid field ranges), and 0 for anything else (not JSON, not an object, another
 * schema version, a missing or malformed time), so a bad record never advances a watermark.
 * The parser in Python stays the only authority for the event time of features and lateness.
 *
 * <p>Future guard ({@code eval(payload, partition, maxAheadMs)}): a time more than {@code
 * maxAheadMs} ahead of its partition's progress gives {@link #AHEAD} (-1), never a watermark
 * candidate. The rule tells a JUMP (one record far ahead: refused) from a GAP (a partition
 * that was quiet, then goes on: accepted):
 * <ul>
 *   <li>A partition's progress is the largest time this instance accepted there, aged by the
 *       wall-clock time since it moved (live traffic after a quiet weekend is not ahead), and
 *       never behind the instance's lead, the largest time accepted on any of its partitions
 *       (a sparse partition catches up with its siblings). The wall clock caps it, and stands
 *       in before a partition's first record: ceiling = min(now, progress) + maxAheadMs.
 *   <li>Confirmation: when {@link #CONFIRMATIONS} refused times in a row (on any partition of
 *       the instance) lie within maxAheadMs of the first of them, the traffic itself has
 *       moved (a replay of data with a gap of days everywhere): the last one is accepted and
 *       becomes the progress, so the source never stays stuck. The ones before it stay
 *       refused. An accepted record in between ends the streak.
 *   <li>Never more than maxAheadMs past the wall clock, whatever the progress.
 * </ul>
 * The job selects the same call as a column, so the parser dead-letters exactly the records
 * refused here; {@code models.hot_path.EventTimeGuard} is the same rule in Python (the peer)
 * and tests hold both to the same cases. Progress is not checkpointed: after a restart it
 * starts again from the wall clock (documented limit).
 *
 * <p>Decision, measured: one streaming pass over the bytes replaces three {@code JSON_VALUE}
 * calls (each re-parses the document) plus two regular expressions in SQL, which were the
 * largest Java cost of the source thread. The rule is the one the SQL expression applied.
 */
public final class EventTimeMillis extends ScalarFunction {

    private static final long serialVersionUID = 1L;

    private static final Pattern RFC3339 =
            Pattern.compile(
                    "^(199[0-9]|20[0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
                            + "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?"
                            + "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$");

    private static final JsonFactory JSON = new JsonFactory();

    /** The verdict for a well-formed time too far ahead of its partition's progress. */
    public static final long AHEAD = -1L;

    /** Refused times in a row, agreeing within the bound, that prove the traffic moved. */
    public static final int CONFIRMATIONS = 3;

    /** Per partition: {largest accepted time, wall clock when it was accepted}. */
    private final Map<Integer, long[]> progress = new HashMap<>();

    private long lead = Long.MIN_VALUE;
    private long streakStart;
    private int streakLength;

    /** The event time of {@code payload} (0: none), or {@link #AHEAD}; see the class doc. */
    public long eval(byte[] payload, Integer partition, Long maxAheadMs) {
        return verdict(eval(payload), partition, maxAheadMs, System.currentTimeMillis());
    }

    /** The future guard on an already extracted time {@code timeMs} (0: none), at {@code nowMs}. */
    public long verdict(long timeMs, Integer partition, Long maxAheadMs, long nowMs) {
        if (timeMs <= 0L || partition == null || maxAheadMs == null) {
            return timeMs;
        }
        long[] seen = progress.get(partition);
        long reference = nowMs;
        if (seen != null) {
            long aged = seen[0] + Math.max(0L, nowMs - seen[1]);
            reference = Math.min(nowMs, Math.max(aged, lead));
        }
        if (timeMs > nowMs + maxAheadMs
                || (timeMs > reference + maxAheadMs && !confirmsStreak(timeMs, maxAheadMs))) {
            return AHEAD;
        }
        streakLength = 0;
        if (seen == null) {
            progress.put(partition, new long[] {timeMs, nowMs});
        } else if (timeMs > seen[0]) {
            seen[0] = timeMs;
            seen[1] = nowMs;
        }
        lead = Math.max(lead, timeMs);
        return timeMs;
    }

    /** Counts a refused time into the streak; true when it completes the confirmation. */
    private boolean confirmsStreak(long timeMs, long maxAheadMs) {
        if (streakLength > 0 && Math.abs(timeMs - streakStart) <= maxAheadMs) {
            streakLength++;
        } else {
            streakStart = timeMs;
            streakLength = 1;
        }
        return streakLength >= CONFIRMATIONS;
    }

    /** The event time of {@code payload} without the future guard (0: none). */
    public long eval(byte[] payload) {
        if (payload == null) {
            return 0L;
        }
        String eventTime = null;
        String schemaVersion = null;
        try (JsonParser parser = JSON.createParser(payload)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return 0L;
            }
            JsonToken token;
            while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
                String name = parser.currentName();
                JsonToken value = parser.nextToken();
                if (value.isScalarValue()) {
                    if ("event_time".equals(name)) {
                        eventTime = value == JsonToken.VALUE_STRING ? parser.getText() : null;
                    } else if ("schema_version".equals(name)) {
                        schemaVersion = parser.getText();
                    }
                } else {
                    parser.skipChildren();
                }
            }
            // The whole document must be well formed, as for JSON_VALUE: nothing after it.
            if (token != JsonToken.END_OBJECT || parser.nextToken() != null) {
                return 0L;
            }
        } catch (Exception malformed) {
            return 0L;
        }
        if (!"1".equals(schemaVersion) || eventTime == null
                || !RFC3339.matcher(eventTime).matches()) {
            return 0L;
        }
        try {
            return OffsetDateTime.parse(eventTime).toEpochSecond() * 1000L;
        } catch (RuntimeException invalidDate) { // e.g. 2021-02-30
            return 0L;
        }
    }
}
