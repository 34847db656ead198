package org.apache.flink.metrics.prometheus;

import org.apache.flink.metrics.MetricConfig;
import org.apache.flink.metrics.reporter.MetricReporterFactory;
import org.apache.flink.util.PortRange;

import java.util.Properties;

/**
 * {@code metrics.reporter.<name>.factory.class} for {@link LoopbackPrometheusReporter}.
 * Options: {@code host} (default 127.0.0.1) and {@code port} (a port or range, as Flink's
 * reporter: the first free port of the range is taken).
 */
public class LoopbackPrometheusReporterFactory implements MetricReporterFactory {

    @Override
    public LoopbackPrometheusReporter createMetricReporter(Properties properties) {
        MetricConfig config = (MetricConfig) properties;
        String host = config.getString("host", "127.0.0.1");
        PortRange ports = new PortRange(config.getString("port", "9249"));
        return new LoopbackPrometheusReporter(host, ports.getPortsIterator());
    }
}
