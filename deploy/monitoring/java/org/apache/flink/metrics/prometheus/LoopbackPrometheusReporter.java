package org.apache.flink.metrics.prometheus;

import io.prometheus.client.exporter.HTTPServer;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Iterator;

/**
 * Flink's Prometheus reporter, listening on one given address instead of every interface.
 *
 * <p>Flink 2.2's {@code PrometheusReporter} binds {@code new InetSocketAddress(port)} (the
 * wildcard address) and has no host option; the fraudstream stack listens on loopback only.
 * Same metrics and exposition as Flink's (it is the same {@link AbstractPrometheusReporter});
 * only the listening socket differs. It lives in Flink's package because the reporter's
 * collector registry is package-private; it is loaded from the same plugin directory as
 * flink-metrics-prometheus (one plugin class loader), see deploy/local/flink_cluster.py.
 */
public class LoopbackPrometheusReporter extends AbstractPrometheusReporter {

    private final HTTPServer httpServer;
    private final int port;

    LoopbackPrometheusReporter(String host, Iterator<Integer> ports) {
        HTTPServer server = null;
        int bound = -1;
        while (server == null && ports.hasNext()) {
            int candidate = ports.next();
            try {
                server = new HTTPServer(new InetSocketAddress(host, candidate), registry);
                bound = candidate;
            } catch (IOException e) {
                log.debug("Could not start Prometheus HTTP server on {}:{}.", host, candidate, e);
            }
        }
        if (server == null) {
            throw new RuntimeException(
                    "Could not start the Prometheus HTTP server on " + host + ": every port of"
                            + " the configured range is taken (metrics.reporter.<name>.port).");
        }
        httpServer = server;
        port = bound;
        log.info("Started Prometheus reporter HTTP server on {}:{}.", host, port);
    }

    int getPort() {
        return port;
    }

    @Override
    public void close() {
        httpServer.stop();
        super.close();
    }
}
