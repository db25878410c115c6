package dev.agentmemory.opensearchnode;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.AppenderComponentBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;
import org.opensearch.action.admin.indices.template.put.PutIndexTemplateRequest;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * A single-node OpenSearch 2.19 with the k-NN plugin, bound to 127.0.0.1, for tests and local runs.
 *
 * <p>The distribution's modules and the k-NN plugin are loaded as classpath plugins (no plugins/ or
 * modules/ directory, no security manager), the way OpenSearch's own test nodes are built. The k-NN
 * jars carry no native libraries: the lucene engine works fully, faiss only on k-NN's Java exact-search
 * path. The index template installed at start keeps every index on that path
 * ({@code index.knn.advanced.approximate_threshold: -1}: no native graph is ever built), so a client
 * configured for faiss, the managed-domain default, needs nothing special. It also gives every index no
 * replica (one node) and a 100 ms refresh interval.
 *
 * <p>Configuration: {@code OPENSEARCH_PORT} (HTTP, default 9200), {@code OPENSEARCH_DATA_DIR} or the first
 * argument (default {@code ./opensearch-data}). Logs go to {@code <data dir>/logs/opensearch-node.log} at
 * WARN; one line on stdout says when the node is ready.
 */
public final class TestNode extends Node {
    static final String KNN_PLUGIN = "org.opensearch.knn.plugin.KNNPlugin";
    static final String EXACT_TEMPLATE = "agent-memory-test-node-faiss-exact";

    private TestNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        super(environment, plugins, true);
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> env = System.getenv();
        int port = Integer.parseInt(env.getOrDefault("OPENSEARCH_PORT", "9200"));
        Path dataDir = Path.of(args.length > 0 ? args[0] : env.getOrDefault("OPENSEARCH_DATA_DIR", "opensearch-data"))
            .toAbsolutePath();
        Path logs = dataDir.resolve("logs");
        Files.createDirectories(logs);
        configureLogging(logs.resolve("opensearch-node.log"));

        Settings settings = Settings.builder()
            .put("path.home", dataDir.toString())
            .put("path.data", dataDir.resolve("data").toString())
            .put("path.logs", logs.toString())
            .put("cluster.name", "agent-memory-test")
            .put("node.name", "test-node")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", port)
            .put("transport.port", env.getOrDefault("OPENSEARCH_TRANSPORT_PORT", "0"))
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", false) // a typo'd index name should fail, not appear
            .build();

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        plugins.add(Netty4Plugin.class);
        plugins.add(CommonAnalysisPlugin.class);
        plugins.add(PainlessPlugin.class);
        plugins.add(Class.forName(KNN_PLUGIN).asSubclass(Plugin.class));

        long started = System.nanoTime();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "test-node");
        TestNode node = new TestNode(environment, plugins);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                System.err.println("opensearch-node: close failed: " + e);
            } finally {
                stopped.countDown();
            }
        }, "opensearch-node-shutdown"));
        node.start();
        node.client().admin().cluster().prepareHealth().setWaitForYellowStatus().get();
        installExactSearchTemplate(node);
        System.out.printf("opensearch-node: ready on http://127.0.0.1:%d in %.1fs (data in %s)%n",
            port, (System.nanoTime() - started) / 1e9, dataDir);
        System.out.flush();
        stopped.await();
    }

    /** Every new index searches faiss fields exactly (native graphs cannot be built without the JNI libraries). */
    private static void installExactSearchTemplate(Node node) {
        PutIndexTemplateRequest template = new PutIndexTemplateRequest(EXACT_TEMPLATE)
            .patterns(List.of("*"))
            .order(Integer.MIN_VALUE) // anything else a user puts in a template or request wins
            .settings(Settings.builder()
                .put("index.knn.advanced.approximate_threshold", -1)
                .put("index.number_of_replicas", 0) // one node: a replica could never be assigned
                // Writes wait for a refresh (refresh=wait_for, read-your-writes); tests write then read
                // thousands of times, and a domain's 1 s default would make each write wait up to 1 s.
                .put("index.refresh_interval", "100ms"));
        node.client().admin().indices().putTemplate(template).actionGet();
    }

    private static void configureLogging(Path file) {
        ConfigurationBuilder<BuiltConfiguration> builder = ConfigurationBuilderFactory.newConfigurationBuilder();
        builder.setStatusLevel(Level.ERROR);
        AppenderComponentBuilder appender = builder.newAppender("file", "File")
            .addAttribute("fileName", file.toString())
            .add(builder.newLayout("PatternLayout").addAttribute("pattern", "[%d{ISO8601}][%-5p][%c{1.}] %m%n"));
        builder.add(appender);
        builder.add(builder.newRootLogger(Level.WARN).add(builder.newAppenderRef("file")));
        // Said on every shard allocation / at every start of a classpath-plugin node; not a problem here.
        builder.add(builder.newLogger("org.opensearch.cluster.routing.allocation.AllocationService", Level.ERROR));
        builder.add(builder.newLogger("org.opensearch.gateway.DanglingIndicesState", Level.ERROR));
        Configurator.initialize(builder.build());
    }
}
