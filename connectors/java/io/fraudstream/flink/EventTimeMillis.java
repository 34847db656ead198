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
 * candidate. Progress = the largest time this instance accepted for the partition; before the
 * first one (and never above it) the wall clock stands in, so the ceiling is {@code
 * min(progress, now) + maxAheadMs}. The job selects the same call as a column, so the parser
 * dead-letters exactly the records refused here; {@code models.hot_path.EventTimeGuard} is the
 * same rule in Python (the peer) and tests hold both to the same cases. Progress is not
 * checkpointed: after a restart it starts again from the wall clock (documented limit).
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

    private final Map<Integer, Long> progress = new HashMap<>();

    /** The event time of {@code payload} (0: none), or {@link #AHEAD}; see the class doc. */
    public long eval(byte[] payload, Integer partition, Long maxAheadMs) {
        return verdict(eval(payload), partition, maxAheadMs, System.currentTimeMillis());
    }

    /** The future guard on an already extracted time {@code timeMs} (0: none), at {@code nowMs}. */
    public long verdict(long timeMs, Integer partition, Long maxAheadMs, long nowMs) {
        if (timeMs <= 0L || partition == null || maxAheadMs == null) {
            return timeMs;
        }
        Long seen = progress.get(partition);
        long reference = seen == null ? nowMs : Math.min(seen, nowMs);
        if (timeMs > reference + maxAheadMs) {
            return AHEAD;
        }
        if (seen == null || timeMs > seen) {
            progress.put(partition, timeMs);
        }
        return timeMs;
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
