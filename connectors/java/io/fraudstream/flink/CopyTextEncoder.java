package io.fraudstream.flink;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;

import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.TimestampType;

/**
 * Encodes {@link RowData} as lines of Postgres COPY text format (tab-separated, {@code \N} for
 * null, backslash escapes), followed by a running sequence number column.
 *
 * <p>Types: CHAR/VARCHAR (UTF-8 bytes, escaped), BINARY/VARBINARY (to {@code bytea}, as
 * {@code \\x} + hex), BOOLEAN, INT, BIGINT, DOUBLE, FLOAT, TIMESTAMP (written as UTC with an
 * explicit {@code +00} offset, so the session time zone does not matter for {@code timestamptz}
 * columns). Others are refused when the sink is built.
 *
 * <p>Contract: every line is valid COPY text for Postgres. A NUL character cannot be stored in
 * a Postgres text value at all: a text field's NUL bytes are written as U+FFFD (the
 * replacement character, as Pyrolite does for lone surrogates). The job's Python never emits
 * NUL (issue 10, property-tested), so this is only a backstop that keeps one bad value from
 * failing every retry of a flush. Flink's strings are always well-formed UTF-8.
 */
public final class CopyTextEncoder {
    private static final byte[] REPLACEMENT = {(byte) 0xef, (byte) 0xbf, (byte) 0xbd};
    private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

    private final LogicalType[] types;

    public CopyTextEncoder(LogicalType[] types) {
        for (LogicalType type : types) {
            switch (type.getTypeRoot()) {
                case CHAR: case VARCHAR: case BINARY: case VARBINARY: case BOOLEAN:
                case INTEGER: case BIGINT: case DOUBLE: case FLOAT: case TIMESTAMP_WITHOUT_TIME_ZONE:
                    break;
                default:
                    throw new IllegalArgumentException("COPY sink cannot write type " + type);
            }
        }
        this.types = types.clone();
    }

    /** Appends one line: the row's fields, then {@code seq}, then a newline. */
    public void encode(RowData row, long seq, ByteArrayOutputStream out) {
        for (int i = 0; i < types.length; i++) {
            if (row.isNullAt(i)) {
                out.write('\\');
                out.write('N');
            } else {
                writeField(row, i, out);
            }
            out.write('\t');
        }
        writeAscii(Long.toString(seq), out);
        out.write('\n');
    }

    private void writeField(RowData row, int i, ByteArrayOutputStream out) {
        switch (types[i].getTypeRoot()) {
            case CHAR:
            case VARCHAR:
                writeEscaped(row.getString(i), out);
                break;
            case BINARY:
            case VARBINARY:
                writeBytea(row.getBinary(i), out);
                break;
            case BOOLEAN:
                out.write(row.getBoolean(i) ? 't' : 'f');
                break;
            case INTEGER:
                writeAscii(Integer.toString(row.getInt(i)), out);
                break;
            case BIGINT:
                writeAscii(Long.toString(row.getLong(i)), out);
                break;
            case DOUBLE:
                writeAscii(Double.toString(row.getDouble(i)), out);
                break;
            case FLOAT:
                writeAscii(Float.toString(row.getFloat(i)), out);
                break;
            default: // TIMESTAMP_WITHOUT_TIME_ZONE (checked in the constructor)
                // the declared precision: a BinaryRowData stores TIMESTAMP(p <= 3) compactly,
                // and reading it with another precision would misread the field
                TimestampData ts = row.getTimestamp(i, ((TimestampType) types[i]).getPrecision());
                LocalDateTime time = ts.toLocalDateTime();
                writeAscii(time.toString().replace('T', ' ') + "+00", out);
        }
    }

    private static void writeEscaped(StringData text, ByteArrayOutputStream out) {
        byte[] utf8 = text.toBytes();
        int start = 0;
        for (int i = 0; i < utf8.length; i++) {
            byte b = utf8[i];
            char escape;
            switch (b) {
                case '\\': escape = '\\'; break;
                case '\t': escape = 't'; break;
                case '\n': escape = 'n'; break;
                case '\r': escape = 'r'; break;
                case 0: escape = 0; break;
                default: continue;
            }
            out.write(utf8, start, i - start);
            if (escape == 0) {
                out.write(REPLACEMENT, 0, REPLACEMENT.length);
            } else {
                out.write('\\');
                out.write(escape);
            }
            start = i + 1;
        }
        out.write(utf8, start, utf8.length - start);
    }

    /** {@code bytea} hex format; its backslash doubled for COPY text: {@code \\x0a1b...}. */
    private static void writeBytea(byte[] bytes, ByteArrayOutputStream out) {
        out.write('\\');
        out.write('\\');
        out.write('x');
        for (byte b : bytes) {
            out.write(HEX[(b >> 4) & 0xf]);
            out.write(HEX[b & 0xf]);
        }
    }

    private static void writeAscii(String text, ByteArrayOutputStream out) {
        byte[] bytes = text.getBytes(StandardCharsets.US_ASCII);
        out.write(bytes, 0, bytes.length);
    }
}
