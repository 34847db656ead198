package io.fraudstream.flink;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;
import org.apache.flink.types.Row;

/**
 * Forwards records and nothing about event time: its output is idle from the start and never
 * carries a watermark.
 *
 * <p>Why: the scorer is a two-input operator (transactions, and the control stream of model
 * promotions and rules). Flink gives a two-input operator the minimum of its inputs'
 * watermarks, ignoring an idle input. A control topic with no watermarks would hold the
 * scorer's event time (late flags, aggregate windows) at its start forever; one with watermarks
 * from its record times would hold it back after every control message, or, while the
 * transactions are idle, push it to the control message's time. Control messages are not
 * events in the transactions' time, so their input declares itself idle for good.
 */
public final class WithoutEventTime extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<Row, Row> {

    private static final long serialVersionUID = 1L;

    @Override
    public void open() throws Exception {
        super.open();
        output.emitWatermarkStatus(WatermarkStatus.IDLE);
    }

    @Override
    public void processElement(StreamRecord<Row> element) {
        output.collect(element);
    }

    @Override
    public void processWatermark(Watermark mark) {
        // dropped: see the class comment
    }

    @Override
    public void processWatermarkStatus(WatermarkStatus watermarkStatus) {
        // dropped: this output stays idle
    }
}
