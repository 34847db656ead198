package io.fraudstream.flink;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

import org.apache.flink.types.Row;

/**
 * Writes a Python pickle (protocol 3) of a list of tuples, one tuple per {@link Row}.
 *
 * <p>Contract: {@link #add} appends one row's fields as a tuple; {@link #finish} returns the
 * pickle bytes of the whole list and resets the writer. Python reads it with {@code
 * pickle.loads}, which PyFlink applies to every {@code PICKLED_BYTE_ARRAY} input, so a batch of
 * records crosses into Python as one byte array decoded by the C unpickler.
 *
 * <p>Field types: null, Boolean, Integer, Long, Short, Byte, Double, Float, byte[] (Python
 * bytes, kept losslessly) and String (Python str). Anything else is an error: this is an
 * in-job format between our own operators, never persisted.
 */
public final class PickleBatchWriter {
    private static final int PROTO = 0x80;
    private static final int EMPTY_LIST = ']';
    private static final int MARK = '(';
    private static final int TUPLE = 't';
    private static final int APPENDS = 'e';
    private static final int STOP = '.';
    private static final int NONE = 'N';
    private static final int NEWTRUE = 0x88;
    private static final int NEWFALSE = 0x89;
    private static final int BININT = 'J';
    private static final int LONG1 = 0x8a;
    private static final int BINFLOAT = 'G';
    private static final int SHORT_BINBYTES = 'C';
    private static final int BINBYTES = 'B';
    private static final int BINUNICODE = 'X';

    private final ByteArrayOutputStream out = new ByteArrayOutputStream(64 * 1024);
    private int size;

    public PickleBatchWriter() {
        start();
    }

    public int size() {
        return size;
    }

    public boolean isEmpty() {
        return size == 0;
    }

    public void add(Row row) {
        out.write(MARK);
        for (int i = 0; i < row.getArity(); i++) {
            writeValue(row.getField(i));
        }
        out.write(TUPLE);
        size++;
    }

    public byte[] finish() {
        out.write(APPENDS);
        out.write(STOP);
        byte[] bytes = out.toByteArray();
        out.reset();
        size = 0;
        start();
        return bytes;
    }

    private void start() {
        out.write(PROTO);
        out.write(3);
        out.write(EMPTY_LIST);
        out.write(MARK);
    }

    private void writeValue(Object value) {
        if (value == null) {
            out.write(NONE);
        } else if (value instanceof Boolean) {
            out.write((Boolean) value ? NEWTRUE : NEWFALSE);
        } else if (value instanceof Integer || value instanceof Short || value instanceof Byte) {
            writeInt(((Number) value).intValue());
        } else if (value instanceof Long) {
            long v = (Long) value;
            if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
                writeInt((int) v);
            } else {
                out.write(LONG1);
                out.write(8);
                writeLittleEndian(v, 8);
            }
        } else if (value instanceof Double || value instanceof Float) {
            out.write(BINFLOAT);
            long bits = Double.doubleToLongBits(((Number) value).doubleValue());
            for (int shift = 56; shift >= 0; shift -= 8) {
                out.write((int) (bits >>> shift) & 0xff);
            }
        } else if (value instanceof byte[]) {
            byte[] bytes = (byte[]) value;
            if (bytes.length < 256) {
                out.write(SHORT_BINBYTES);
                out.write(bytes.length);
            } else {
                out.write(BINBYTES);
                writeLittleEndian(bytes.length, 4);
            }
            out.write(bytes, 0, bytes.length);
        } else if (value instanceof String) {
            byte[] utf8 = ((String) value).getBytes(StandardCharsets.UTF_8);
            out.write(BINUNICODE);
            writeLittleEndian(utf8.length, 4);
            out.write(utf8, 0, utf8.length);
        } else {
            throw new IllegalArgumentException(
                    "cannot pickle a field of type " + value.getClass().getName());
        }
    }

    private void writeInt(int v) {
        out.write(BININT);
        writeLittleEndian(v, 4);
    }

    private void writeLittleEndian(long v, int bytes) {
        for (int i = 0; i < bytes; i++) {
            out.write((int) (v >>> (8 * i)) & 0xff);
        }
    }
}
