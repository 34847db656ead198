"""Python handles on the project's Java operators (`connectors/java`, built by bootstrap into
the `fraudstream-flink-ops` jar that every job ships with its connector jars).

They make Python run once per batch of records instead of once per record:
- `micro_batch(stream, ...)`: rows -> one pickled list of tuples per batch (flushed by size,
  by delay, and always before a watermark, a checkpoint barrier and the end of input);
- `rows_from_batches(stream, row_type)`: pickled lists of tuples written by Python -> typed
  rows for the Table/SQL sinks, without a call into Python per row;
- `without_event_time(stream)`: the same rows on an output that is idle for good, so the
  control stream never holds back (or pushes) the scorer's event time.
"""

from __future__ import annotations

from typing import Any

OPS_PACKAGE = "io.fraudstream.flink"


def _ops() -> Any:
    from pyflink.java_gateway import get_gateway

    return getattr(get_gateway().jvm, OPS_PACKAGE)


def micro_batch(stream: Any, max_records: int, max_delay_ms: int, uid: str) -> Any:
    """`stream` (DataStream of Rows) -> DataStream of pickled batches (`BATCH_TYPE`)."""
    from pyflink.datastream import DataStream

    from connectors.rows import BATCH_TYPE

    operator = _ops().MicroBatcher(int(max_records), int(max_delay_ms))
    j_stream = stream._j_data_stream.transform(
        "micro-batch", BATCH_TYPE.get_java_type_info(), operator
    )
    return DataStream(j_stream).name("micro-batch").uid(uid)


def rows_from_batches(stream: Any, row_type: Any, name: str) -> Any:
    """DataStream of pickled lists of tuples -> DataStream of `row_type` Rows."""
    from pyflink.datastream import DataStream

    function = _ops().PickledRowsToRows(row_type.get_java_type_info())
    return DataStream(stream._j_data_stream.flatMap(function)).name(name)


def without_event_time(stream: Any, uid: str) -> Any:
    """`stream` (DataStream of Rows) with no watermark ever, its output idle from the start
    (`WithoutEventTime`): for a second input whose records are not events in time."""
    from pyflink.datastream import DataStream

    j_stream = stream._j_data_stream.transform(
        "without-event-time", stream._j_data_stream.getType(), _ops().WithoutEventTime()
    )
    return DataStream(j_stream).name("control-without-event-time").uid(uid)
