package io.fraudstream.flink;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Arrays;
import java.util.Collections;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.LogicalType;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The Sink V2 behind {@link PostgresCopySinkFactory}; see its contract. */
public final class PostgresCopySink implements Sink<RowData> {
    private static final long serialVersionUID = 1L;

    /** Connection and table settings (serializable, built by the factory). */
    public static final class Settings implements Serializable {
        private static final long serialVersionUID = 1L;
        final String url;
        final String user;
        final String password;
        final String table;
        final String[] columns;
        final String[] key;
        final int maxRows;
        final long intervalMs;
        final int maxRetries;
        /** Name of the environment variable holding the password, read at writer open. */
        final String passwordEnv;

        public Settings(String url, String user, String password, String table, String[] columns,
                String[] key, int maxRows, long intervalMs, int maxRetries) {
            this(url, user, password, table, columns, key, maxRows, intervalMs, maxRetries, null);
        }

        /** {@code password} or {@code passwordEnv} (or neither); never both. */
        public Settings(String url, String user, String password, String table, String[] columns,
                String[] key, int maxRows, long intervalMs, int maxRetries, String passwordEnv) {
            if (password != null && passwordEnv != null) {
                throw new IllegalArgumentException("give a password or its variable, not both");
            }
            this.url = url;
            this.user = user;
            this.password = password;
            this.table = table;
            this.columns = columns.clone();
            this.key = key.clone();
            this.maxRows = maxRows;
            this.intervalMs = intervalMs;
            this.maxRetries = maxRetries;
            this.passwordEnv = passwordEnv;
        }

        /**
         * The password to connect with: the literal one, else the value of {@code passwordEnv}
         * in this process's environment, else null. Throws IllegalStateException naming the
         * variable (never a value) when {@code passwordEnv} is unset or empty here.
         */
        String resolvePassword() {
            if (passwordEnv == null) {
                return password;
            }
            String value = System.getenv(passwordEnv);
            if (value == null || value.isEmpty()) {
                throw new IllegalStateException(
                        "environment variable " + passwordEnv + " (the Postgres password of "
                                + (user == null ? "the sink" : user) + ", sink table " + table
                                + ") is not set in this Flink process: give it to the "
                                + "JobManager/TaskManagers' environment");
            }
            return value;
        }
    }

    private final Settings settings;
    private final LogicalType[] types;

    public PostgresCopySink(Settings settings, LogicalType[] types) {
        this.settings = settings;
        this.types = types.clone();
        new CopyTextEncoder(types); // refuse unsupported types when the job is built
    }

    @Override
    public SinkWriter<RowData> createWriter(WriterInitContext context) {
        // pgjdbc registers its Driver with java.sql.DriverManager (a JDK class) when it loads:
        // that reference would keep the job's class loader alive after the job, and a session
        // cluster then runs out of metaspace after some jobs (seen after ~16 benchmark jobs).
        context.getUserCodeClassLoader()
                .registerReleaseHookIfAbsent("fraudstream-pgjdbc", PostgresCopySink::releaseDrivers);
        return new Writer(settings, new CopyTextEncoder(types), context.getProcessingTimeService());
    }

    /** Deregisters the JDBC drivers that this job's class loader registered. */
    static void releaseDrivers() {
        ClassLoader mine = PostgresCopySink.class.getClassLoader();
        for (Driver driver : Collections.list(DriverManager.getDrivers())) {
            if (driver.getClass().getClassLoader() == mine) {
                try {
                    DriverManager.deregisterDriver(driver);
                } catch (SQLException ignored) {
                    // nothing more to release
                }
            }
        }
    }

    static String quote(String identifier) {
        return "\"" + identifier.replace("\"", "\"\"") + "\"";
    }

    /** The SQL of one flush (also used by the tests). */
    static String[] statements(Settings s, String stage) {
        String cols = Arrays.stream(s.columns).map(PostgresCopySink::quote)
                .collect(Collectors.joining(", "));
        String key = Arrays.stream(s.key).map(PostgresCopySink::quote)
                .collect(Collectors.joining(", "));
        String updates = Arrays.stream(s.columns)
                .filter(c -> !Arrays.asList(s.key).contains(c))
                .map(c -> quote(c) + " = EXCLUDED." + quote(c))
                .collect(Collectors.joining(", "));
        String target = Arrays.stream(s.table.split("\\.")).map(PostgresCopySink::quote)
                .collect(Collectors.joining("."));
        String create = "CREATE TEMP TABLE IF NOT EXISTS " + stage + " ON COMMIT DELETE ROWS AS "
                + "SELECT " + cols + ", 0::bigint AS fs_seq FROM " + target + " WITH NO DATA";
        String copy = "COPY " + stage + " (" + cols + ", fs_seq) FROM STDIN";
        String upsert = "INSERT INTO " + target + " (" + cols + ") SELECT DISTINCT ON (" + key
                + ") " + cols + " FROM " + stage + " ORDER BY " + key + ", fs_seq DESC"
                + " ON CONFLICT (" + key + ") DO "
                + (updates.isEmpty() ? "NOTHING" : "UPDATE SET " + updates);
        return new String[] {create, copy, upsert};
    }

    /** Buffers encoded rows and writes each flush in one transaction (public for tests). */
    public static final class Writer implements SinkWriter<RowData> {
        private static final Logger LOG = LoggerFactory.getLogger(PostgresCopySink.class);

        private final Settings settings;
        private final CopyTextEncoder encoder;
        private final ProcessingTimeService time;
        private final String[] sql;
        private final String password; // resolved at open, never serialized
        private ByteArrayOutputStream buffer = new ByteArrayOutputStream(1 << 20);
        private int rows;
        private long seq;
        private boolean timerSet;
        private Connection connection; // used by the writer thread only
        // Decision, measured: a flush blocks on Postgres for tens to hundreds of ms; done in the
        // task thread it stalled scoring and the alerts behind it (p99 1.2 s at 1,000 events/s).
        // One background thread writes one flush at a time, in order; the task thread waits
        // for it only when the next flush is due, before a checkpoint and at the end.
        private final ExecutorService flusher;
        private Future<?> inFlight;

        /** {@code time} may be null when {@code settings.intervalMs} is 0 (no timed flush). */
        public Writer(Settings settings, CopyTextEncoder encoder, ProcessingTimeService time) {
            this.settings = settings;
            this.encoder = encoder;
            this.time = time;
            this.password = settings.resolvePassword();
            String stage = "fs_stage_" + settings.table.replaceAll("[^A-Za-z0-9_]", "_");
            this.flusher = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "fraudstream-copy-" + settings.table);
                t.setDaemon(true);
                return t;
            });
            this.sql = statements(settings, stage);
        }

        @Override
        public void write(RowData row, Context context) throws IOException {
            encoder.encode(row, seq++, buffer);
            rows++;
            if (rows >= settings.maxRows) {
                flushBuffer();
            } else if (!timerSet && settings.intervalMs > 0) {
                timerSet = true;
                time.registerTimer(time.getCurrentProcessingTime() + settings.intervalMs,
                        now -> {
                            timerSet = false;
                            flushBuffer();
                        });
            }
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            flushBuffer();
            awaitInFlight();
        }

        /** Hands the buffered rows to the writer thread (after the previous flush is done). */
        private void flushBuffer() throws IOException {
            if (rows == 0) {
                return;
            }
            awaitInFlight();
            ByteArrayOutputStream data = buffer;
            buffer = new ByteArrayOutputStream(Math.max(1 << 16, data.size()));
            rows = 0;
            inFlight = flusher.submit(() -> {
                write(data.toByteArray());
                return null;
            });
        }

        private void awaitInFlight() throws IOException {
            if (inFlight == null) {
                return;
            }
            try {
                inFlight.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            } catch (ExecutionException e) {
                throw e.getCause() instanceof IOException
                        ? (IOException) e.getCause()
                        : new IOException(e.getCause());
            } finally {
                inFlight = null;
            }
        }

        /** Writes one flush, retrying with a fresh connection; runs on the writer thread. */
        private void write(byte[] data) throws IOException {
            for (int attempt = 0; ; attempt++) {
                try {
                    writeOnce(data);
                    break;
                } catch (SQLException e) {
                    closeConnection();
                    if (attempt >= settings.maxRetries) {
                        throw new IOException("COPY upsert into " + settings.table + " failed "
                                + "after " + (attempt + 1) + " attempts", e);
                    }
                    LOG.warn("COPY upsert into {} failed (attempt {}), retrying",
                            settings.table, attempt + 1, e);
                    try {
                        Thread.sleep(1000L * (attempt + 1));
                    } catch (InterruptedException interrupted) {
                        Thread.currentThread().interrupt();
                        throw new IOException(interrupted);
                    }
                }
            }
        }

        private void writeOnce(byte[] data) throws SQLException, IOException {
            Connection c = connection();
            try {
                try (Statement st = c.createStatement()) {
                    st.execute(sql[0]);
                }
                CopyManager copy = c.unwrap(PGConnection.class).getCopyAPI();
                copy.copyIn(sql[1], new ByteArrayInputStream(data));
                try (Statement st = c.createStatement()) {
                    st.executeUpdate(sql[2]);
                }
                c.commit();
            } catch (SQLException | IOException | RuntimeException e) {
                try {
                    c.rollback();
                } catch (SQLException ignored) {
                    // the connection is dropped by the caller
                }
                if (e instanceof IOException) {
                    throw new SQLException("COPY stream failed", e);
                }
                throw e;
            }
        }

        private Connection connection() throws SQLException {
            if (connection == null || connection.isClosed()) {
                Properties props = new Properties();
                if (settings.user != null) {
                    props.setProperty("user", settings.user);
                }
                if (password != null) {
                    props.setProperty("password", password);
                }
                connection = new org.postgresql.Driver().connect(settings.url, props);
                if (connection == null) {
                    throw new SQLException("not a PostgreSQL JDBC URL: " + settings.table);
                }
                connection.setAutoCommit(false);
            }
            return connection;
        }

        private void closeConnection() {
            if (connection != null) {
                try {
                    connection.close();
                } catch (SQLException ignored) {
                    // already broken
                }
                connection = null;
            }
        }

        @Override
        public void close() {
            flusher.shutdownNow();
            try {
                flusher.awaitTermination(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            closeConnection();
        }
    }
}
