package io.fraudstream.flink;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * Collects the rows of one subtask into batches, so that Python is called once per batch.
 *
 * <p>Output: one {@code byte[]} per batch, a pickled list of tuples (see {@link
 * PickleBatchWriter}), typed {@code PICKLED_BYTE_ARRAY} for PyFlink. A batch is emitted when it
 * holds {@code maxRecords} rows, when its first row has waited {@code maxDelayMs} (processing
 * time), and always before a watermark, a checkpoint barrier and the end of input.
 *
 * <p>Guarantees (why no state): the buffer is emptied in {@link #prepareSnapshotPreBarrier},
 * so a checkpoint never holds a buffered row and a restore replays it from the source. Flushing
 * before forwarding a watermark keeps every row ahead of the watermarks that followed it at
 * the source, so event-time lateness downstream is what it would be without batching.
 */
public final class MicroBatcher extends AbstractStreamOperator<byte[]>
        implements OneInputStreamOperator<Row, byte[]>, BoundedOneInput {

    private static final long serialVersionUID = 1L;

    private final int maxRecords;
    private final long maxDelayMs;

    private transient PickleBatchWriter batch;
    private transient long batchNumber; // a timer flushes only the batch it was set for

    public MicroBatcher(int maxRecords, long maxDelayMs) {
        if (maxRecords < 1 || maxDelayMs < 0) {
            throw new IllegalArgumentException(
                    "maxRecords must be >= 1 and maxDelayMs >= 0, got "
                            + maxRecords + ", " + maxDelayMs);
        }
        this.maxRecords = maxRecords;
        this.maxDelayMs = maxDelayMs;
    }

    @Override
    public void open() throws Exception {
        super.open();
        batch = new PickleBatchWriter();
    }

    @Override
    public void processElement(StreamRecord<Row> element) {
        batch.add(element.getValue());
        if (batch.size() >= maxRecords || maxDelayMs == 0) {
            flush();
        } else if (batch.size() == 1) {
            long due = getProcessingTimeService().getCurrentProcessingTime() + maxDelayMs;
            long owner = batchNumber;
            getProcessingTimeService().registerTimer(due, time -> {
                if (owner == batchNumber) {
                    flush();
                }
            });
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        flush();
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        flush();
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void endInput() {
        flush();
    }

    @Override
    public void finish() throws Exception {
        flush();
        super.finish();
    }

    private void flush() {
        if (batch.isEmpty()) {
            return;
        }
        batchNumber++;
        output.collect(new StreamRecord<>(batch.finish()));
    }
}
