/*
 * lineagehub development Neo4j launcher.
 *
 * Runs an embedded Neo4j Community server with a Bolt connector, for development
 * and tests. Started by lineagehub.devdb in Java source-file mode (no compile step):
 *
 *   java -cp 'lib/*' Launcher.java DATA_DIR PORT [--pagecache SIZE] [--watch-stdin]
 *
 * Protocol on stdout (one line each, flushed):
 *   LINEAGEHUB-NEO4J READY bolt://127.0.0.1:PORT   database "neo4j" available, Bolt accepting
 *   LINEAGEHUB-NEO4J FAILED <reason>                start failed; the process exits non-zero
 *   LINEAGEHUB-NEO4J STOPPED                        clean shutdown finished
 *
 * SIGTERM / SIGINT run a shutdown hook that calls dbms.shutdown() (checkpoint, so no
 * recovery is needed at the next start). With --watch-stdin the server also shuts down
 * cleanly, exiting 0, when its stdin reaches EOF (the parent process went away).
 */

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.SettingValueParsers;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;

public final class Launcher {
    private static final String PREFIX = "LINEAGEHUB-NEO4J ";
    private static final String HOST = "127.0.0.1";
    private static final long AVAILABLE_TIMEOUT_MS = 120_000;

    /** Held by main while the DBMS is being built, so a concurrent shutdown waits for it. */
    private static final ReentrantLock LIFECYCLE = new ReentrantLock();
    private static volatile DatabaseManagementService dbms;
    private static volatile boolean stopped;
    private static final PrintStream OUT =
            new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);

    private Launcher() {}

    public static void main(String[] args) {
        String dataDir = null;
        Integer port = null;
        String pagecache = "512m";
        boolean watchStdin = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--pagecache")) {
                if (i + 1 >= args.length) {
                    fail("--pagecache needs a size such as 512m or 1g", 2);
                }
                pagecache = args[++i];
            } else if (a.equals("--watch-stdin")) {
                watchStdin = true;
            } else if (a.startsWith("--")) {
                fail("unknown option " + a
                        + " (usage: Launcher.java DATA_DIR PORT [--pagecache SIZE] [--watch-stdin])", 2);
            } else if (dataDir == null) {
                dataDir = a;
            } else if (port == null) {
                try {
                    port = Integer.parseInt(a);
                } catch (NumberFormatException e) {
                    fail("PORT must be a number, got '" + a + "'", 2);
                }
                if (port < 1 || port > 65535) {
                    fail("PORT must be between 1 and 65535, got " + port, 2);
                }
            } else {
                fail("unexpected argument '" + a + "'", 2);
            }
        }
        if (dataDir == null || port == null) {
            fail("usage: Launcher.java DATA_DIR PORT [--pagecache SIZE] [--watch-stdin]", 2);
        }
        long pagecacheBytes = 0;
        try {
            pagecacheBytes = SettingValueParsers.BYTES.parse(pagecache);
        } catch (RuntimeException e) {
            fail("invalid --pagecache size '" + pagecache + "' (use e.g. 512m or 1g)", 2);
        }

        Runtime.getRuntime().addShutdownHook(new Thread(Launcher::shutdown, "lineagehub-neo4j-shutdown"));
        if (watchStdin) {
            Thread watcher = new Thread(Launcher::watchStdin, "lineagehub-neo4j-stdin-watch");
            watcher.setDaemon(true);
            watcher.start();
        }

        // Fail fast, with a readable reason, when the port is taken (same bind semantics as Netty).
        String portProblem = checkPortFree(port);
        if (portProblem != null) {
            fail(portProblem, 1);
        }

        Path home = Path.of(dataDir).toAbsolutePath();
        Throwable startError = null;
        LIFECYCLE.lock();
        try {
            if (stopped) {
                throw new IllegalStateException("shutdown requested during startup");
            }
            Files.createDirectories(home);
            dbms = new DatabaseManagementServiceBuilder(home)
                    .setConfig(BoltConnector.enabled, true)
                    .setConfig(BoltConnector.listen_address, new SocketAddress(HOST, port))
                    .setConfig(BoltConnector.advertised_address, new SocketAddress(HOST, port))
                    .setConfig(HttpConnector.enabled, false)
                    .setConfig(HttpsConnector.enabled, false)
                    .setConfig(GraphDatabaseSettings.auth_enabled, false)
                    .setConfig(GraphDatabaseSettings.pagecache_memory, pagecacheBytes)
                    // keep disk use small: two transaction log files, 64 MiB each, not preallocated
                    .setConfig(GraphDatabaseSettings.keep_logical_logs, "2 files")
                    .setConfig(GraphDatabaseSettings.logical_log_rotation_threshold, 64L * 1024 * 1024)
                    .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                    .setConfig(GraphDatabaseSettings.udc_enabled, false)
                    // Bolt's Netty event loops default to a 5 s quiet period each on shutdown,
                    // making every stop take 10+ s; no quiet period keeps stop() prompt.
                    .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                    .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(5))
                    .build();
        } catch (Throwable t) {
            startError = t;
        } finally {
            LIFECYCLE.unlock();
        }
        if (startError != null) {
            startError.printStackTrace();
            fail(describe(startError, port), 1);
        }

        DatabaseManagementService service = dbms;
        if (service == null || stopped) {
            return; // a shutdown (signal or stdin EOF) raced with startup; the hook handles it
        }
        try {
            GraphDatabaseService db = service.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
            if (!db.isAvailable(AVAILABLE_TIMEOUT_MS)) {
                fail("database 'neo4j' did not become available within "
                        + AVAILABLE_TIMEOUT_MS / 1000 + " s", 1);
            }
            waitForBolt(port, Duration.ofSeconds(30));
        } catch (Throwable t) {
            t.printStackTrace();
            fail(describe(t, port), 1);
        }
        if (stopped) {
            return;
        }
        OUT.println(PREFIX + "READY bolt://" + HOST + ":" + port);
        OUT.flush();
        // Non-daemon Neo4j threads keep the JVM alive until a signal or stdin EOF.
    }

    private static void watchStdin() {
        InputStream in = System.in;
        byte[] buf = new byte[256];
        try {
            while (in.read(buf) >= 0) {
                // discard; only EOF matters
            }
        } catch (IOException ignored) {
            // treat a broken stdin like EOF
        }
        System.err.println("lineagehub-neo4j: stdin closed (parent gone), shutting down");
        System.exit(0);
    }

    /** Shutdown hook body; idempotent, waits for an in-progress startup. */
    private static void shutdown() {
        stopped = true;
        boolean locked = false;
        try {
            locked = LIFECYCLE.tryLock(AVAILABLE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
        try {
            DatabaseManagementService d = dbms;
            dbms = null;
            if (d != null) {
                long t0 = System.nanoTime();
                try {
                    d.shutdown();
                } catch (Throwable t) {
                    System.err.println("lineagehub-neo4j: error during shutdown: " + t);
                }
                long ms = (System.nanoTime() - t0) / 1_000_000;
                System.err.println("lineagehub-neo4j: shutdown took " + ms + " ms");
                OUT.println(PREFIX + "STOPPED");
                OUT.flush();
            }
        } finally {
            if (locked) {
                LIFECYCLE.unlock();
            }
        }
    }

    private static String checkPortFree(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.getByName(HOST), port));
            return null;
        } catch (BindException e) {
            return portInUse(port);
        } catch (IOException e) {
            return "cannot bind " + HOST + ":" + port + ": " + e.getMessage();
        }
    }

    private static String portInUse(int port) {
        return "port " + port + " on " + HOST + " is in use by another process";
    }

    private static void waitForBolt(int port, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(HOST, port), 1000);
                return;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw new IOException("Bolt connector on " + HOST + ":" + port
                            + " is not accepting connections: " + e.getMessage(), e);
                }
                Thread.sleep(100);
            }
        }
    }

    private static String describe(Throwable t, int port) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof BindException
                    || (c.getMessage() != null && c.getMessage().contains("Address already in use"))) {
                return portInUse(port);
            }
        }
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String msg = t.getClass().getSimpleName() + ": " + t.getMessage();
        if (root != t) {
            msg += " (caused by " + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
        }
        return msg.replace('\n', ' ');
    }

    private static void fail(String reason, int code) {
        System.err.flush();
        OUT.println(PREFIX + "FAILED " + reason.replace('\n', ' '));
        OUT.flush();
        System.exit(code);
    }
}
