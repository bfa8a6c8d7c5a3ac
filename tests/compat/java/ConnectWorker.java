import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.connect.connector.policy.ConnectorClientConfigOverridePolicy;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.runtime.Herder;
import org.apache.kafka.connect.runtime.Worker;
import org.apache.kafka.connect.runtime.WorkerConfigTransformer;
import org.apache.kafka.connect.runtime.distributed.DistributedConfig;
import org.apache.kafka.connect.runtime.distributed.DistributedHerder;
import org.apache.kafka.connect.runtime.distributed.NotLeaderException;
import org.apache.kafka.connect.runtime.distributed.RebalanceNeededException;
import org.apache.kafka.connect.runtime.isolation.Plugins;
import org.apache.kafka.connect.runtime.rest.entities.ConnectorInfo;
import org.apache.kafka.connect.runtime.rest.entities.ConnectorStateInfo;
import org.apache.kafka.connect.storage.Converter;
import org.apache.kafka.connect.storage.KafkaConfigBackingStore;
import org.apache.kafka.connect.storage.KafkaOffsetBackingStore;
import org.apache.kafka.connect.storage.KafkaStatusBackingStore;
import org.apache.kafka.connect.storage.StatusBackingStore;
import org.apache.kafka.connect.util.ConnectUtils;
import org.apache.kafka.connect.util.ConnectorTaskId;
import org.apache.kafka.connect.util.FutureCallback;
import org.apache.kafka.connect.util.SharedTopicAdmin;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;

/**
 * A Kafka Connect worker in distributed mode, assembled as ConnectDistributed assembles one
 * but without the REST server. Connectors are configured and inspected through commands,
 * one JSON object a line on standard input, each answered by one JSON object a line on
 * standard output; Connect's own log goes to standard error.
 *
 * <p>java -cp 'lib/*' ConnectWorker.java BOOTSTRAP GROUP_ID TOPIC_PREFIX WORKER_NAME [KEY=VALUE...]
 * (or compiled with javac and run as the class ConnectWorker)
 *
 * <p>The worker stores its state in the topics TOPIC_PREFIX-configs, -offsets and -status;
 * extra KEY=VALUE arguments are added to (or override) the worker configuration. Once it
 * has joined its group it prints {"event": "ready", "worker": ID}. Commands:
 *
 * <ul>
 *   <li>{"op": "put", "name": N, "config": {...}}: create or update connector N; retried
 *       while this worker is not (yet) the leader, which alone may write configurations.
 *   <li>{"op": "status", "name": N}: the connector's and its tasks' states and workers, as
 *       the status topic has them.
 *   <li>{"op": "running"}: the connectors and tasks this worker runs.
 *   <li>{"op": "stop"}: stop the worker and exit 0, as end of input or SIGTERM does.
 * </ul>
 *
 * Answers carry "ok": true, or "ok": false and an "error". The process exits 1 with a
 * message on standard error when the worker cannot start or its herder thread dies.
 */
public class ConnectWorker {
    private static final long READY_TIMEOUT_MS = 60_000;
    private static final long PUT_TIMEOUT_MS = 30_000;

    private final ObjectMapper json = new ObjectMapper();
    private final PrintStream out;
    private final String workerId;
    private final Worker worker;
    private final DistributedHerder herder;
    private final AtomicBoolean stopped = new AtomicBoolean();

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println(
                    "usage: ConnectWorker BOOTSTRAP GROUP_ID TOPIC_PREFIX WORKER_NAME [KEY=VALUE...]");
            System.exit(2);
        }
        logToStandardError();
        Map<String, String> props = workerProps(args);
        ConnectWorker connect;
        try {
            connect = new ConnectWorker(props, args[3]);
            connect.start();
        } catch (Exception e) {
            System.err.println("ConnectWorker: the worker did not start: " + e);
            e.printStackTrace();
            System.exit(1);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(connect::stop, "connect-worker-stop"));
        connect.serve();
        connect.stop();
        System.exit(0);
    }

    private static void logToStandardError() {
        // One logging context for every class loader: run as a source file, this class has a
        // loader of its own, apart from Connect's.
        System.setProperty(
                "log4j2.contextSelector", "org.apache.logging.log4j.core.selector.BasicContextSelector");
        ConfigurationBuilder<BuiltConfiguration> builder =
                ConfigurationBuilderFactory.newConfigurationBuilder();
        // Keep logging while the worker stops on SIGTERM.
        builder.setShutdownHook("disable");
        builder.add(builder.newAppender("stderr", "Console")
                .addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR)
                .add(builder.newLayout("PatternLayout")
                        .addAttribute("pattern", "%d{HH:mm:ss.SSS} %-5p [%t] %c{1}: %m%n")));
        builder.add(builder.newRootLogger(Level.INFO).add(builder.newAppenderRef("stderr")));
        builder.add(builder.newLogger("org.apache.kafka.clients", Level.WARN));
        builder.add(builder.newLogger("org.apache.kafka.common", Level.WARN));
        Configurator.initialize(builder.build());
    }

    private static Map<String, String> workerProps(String[] args) {
        String prefix = args[2];
        Map<String, String> props = new HashMap<>();
        props.put("bootstrap.servers", args[0]);
        props.put("group.id", args[1]);
        props.put("config.storage.topic", prefix + "-configs");
        props.put("offset.storage.topic", prefix + "-offsets");
        props.put("status.storage.topic", prefix + "-status");
        props.put("config.storage.replication.factor", "1");
        props.put("offset.storage.replication.factor", "1");
        props.put("status.storage.replication.factor", "1");
        props.put("key.converter", "org.apache.kafka.connect.storage.StringConverter");
        props.put("value.converter", "org.apache.kafka.connect.storage.StringConverter");
        props.put("plugin.discovery", "service_load");
        props.put("offset.flush.interval.ms", "500");
        props.put("scheduled.rebalance.max.delay.ms", "2000");
        props.put("heartbeat.interval.ms", "1000");
        for (int i = 4; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("not KEY=VALUE: " + args[i]);
            }
            props.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        return props;
    }

    /** The steps of ConnectDistributed.startConnect and createHerder, less the REST server. */
    ConnectWorker(Map<String, String> props, String name) {
        this.out = System.out;
        Plugins plugins = new Plugins(props);
        plugins.compareAndSwapWithDelegatingLoader();
        DistributedConfig config = new DistributedConfig(props);
        String advertisedUrl = "http://" + name + ":8083/";
        this.workerId = name + ":8083";
        ConnectorClientConfigOverridePolicy policy = plugins.newPlugin(
                config.getString("connector.client.config.override.policy"),
                config,
                ConnectorClientConfigOverridePolicy.class);

        String clusterId = config.kafkaClusterId();
        String clientIdBase = ConnectUtils.clientIdBase(config);
        Map<String, Object> adminProps = new HashMap<>(config.originals());
        ConnectUtils.addMetricsContextProperties(adminProps, config, clusterId);
        adminProps.put("client.id", clientIdBase + "shared-admin");
        SharedTopicAdmin sharedAdmin = new SharedTopicAdmin(adminProps);

        KafkaOffsetBackingStore offsetStore = new KafkaOffsetBackingStore(
                sharedAdmin,
                () -> clientIdBase,
                plugins.newInternalConverter(
                        true, JsonConverter.class.getName(), Map.of("schemas.enable", "false")));
        offsetStore.configure(config);

        this.worker = new Worker(workerId, Time.SYSTEM, plugins, config, offsetStore, policy);
        WorkerConfigTransformer transformer = worker.configTransformer();
        Converter internalConverter = worker.getInternalValueConverter();
        StatusBackingStore statusStore =
                new KafkaStatusBackingStore(Time.SYSTEM, internalConverter, sharedAdmin, clientIdBase);
        statusStore.configure(config);
        KafkaConfigBackingStore configStore = new KafkaConfigBackingStore(
                internalConverter, config, transformer, sharedAdmin, clientIdBase);

        this.herder = new DistributedHerder(
                config,
                Time.SYSTEM,
                worker,
                clusterId,
                statusStore,
                configStore,
                advertisedUrl,
                null,
                policy,
                List.of(),
                sharedAdmin);
    }

    /** Start the herder and wait until it has read its topics and joined the group. */
    void start() throws Exception {
        herder.start();
        FutureCallback<Void> health = new FutureCallback<>();
        herder.healthCheck(health);
        try {
            health.get(READY_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new IllegalStateException(
                    "the herder was not ready after " + READY_TIMEOUT_MS + " ms", e);
        }
        Thread watchdog = new Thread(this::exitWhenHerderDies, "connect-worker-watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
        Map<String, Object> ready = new LinkedHashMap<>();
        ready.put("event", "ready");
        ready.put("worker", workerId);
        emit(ready);
    }

    private void exitWhenHerderDies() {
        try {
            herder.herderTask().get();
        } catch (Exception e) {
            if (!stopped.get()) {
                System.err.println("ConnectWorker: the herder thread died: " + e);
                e.printStackTrace();
                Runtime.getRuntime().halt(1);
            }
            return;
        }
        if (!stopped.get()) {
            System.err.println("ConnectWorker: the herder thread ended on its own");
            Runtime.getRuntime().halt(1);
        }
    }

    /** Answer commands until "stop" or the end of input. */
    void serve() throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode command = json.readTree(line);
            String op = command.path("op").asText();
            if (op.equals("stop")) {
                stop();
                emit(Map.of("ok", true));
                return;
            }
            Map<String, Object> answer = new LinkedHashMap<>();
            try {
                switch (op) {
                    case "put" -> put(command, answer);
                    case "status" -> status(command.path("name").asText(), answer);
                    case "running" -> running(answer);
                    default -> throw new IllegalArgumentException("unknown op " + op);
                }
                answer.put("ok", true);
            } catch (Exception e) {
                answer.clear();
                answer.put("ok", false);
                answer.put("error", e.toString());
                e.printStackTrace();
            }
            emit(answer);
        }
    }

    private void put(JsonNode command, Map<String, Object> answer) throws Exception {
        String name = command.path("name").asText();
        Map<String, String> config = new HashMap<>();
        for (Map.Entry<String, JsonNode> entry : command.path("config").properties()) {
            config.put(entry.getKey(), entry.getValue().asText());
        }
        config.put("name", name);
        long deadline = System.currentTimeMillis() + PUT_TIMEOUT_MS;
        while (true) {
            FutureCallback<Herder.Created<ConnectorInfo>> done = new FutureCallback<>();
            herder.putConnectorConfig(name, config, true, done);
            try {
                Herder.Created<ConnectorInfo> created =
                        done.get(PUT_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                answer.put("created", created.created());
                answer.put("type", String.valueOf(created.result().type()));
                return;
            } catch (ExecutionException e) {
                boolean retriable = e.getCause() instanceof NotLeaderException
                        || e.getCause() instanceof RebalanceNeededException;
                if (!retriable || System.currentTimeMillis() > deadline) {
                    throw e;
                }
            }
            Thread.sleep(200);
        }
    }

    private void status(String name, Map<String, Object> answer) {
        ConnectorStateInfo info = herder.connectorStatus(name);
        answer.put("state", info.connector().state());
        answer.put("worker", info.connector().workerId());
        answer.put("trace", info.connector().trace());
        List<Map<String, Object>> tasks = new ArrayList<>();
        for (ConnectorStateInfo.TaskState task : info.tasks()) {
            Map<String, Object> seen = new LinkedHashMap<>();
            seen.put("id", task.id());
            seen.put("state", task.state());
            seen.put("worker", task.workerId());
            seen.put("trace", task.trace());
            tasks.add(seen);
        }
        answer.put("tasks", tasks);
    }

    private void running(Map<String, Object> answer) {
        answer.put("connectors", new TreeSet<>(worker.connectorNames()));
        TreeSet<String> tasks = new TreeSet<>();
        for (ConnectorTaskId id : worker.taskIds()) {
            tasks.add(id.connector() + "-" + id.task());
        }
        answer.put("tasks", tasks);
    }

    /** Leave the group and stop connectors, tasks and stores; safe to call more than once. */
    void stop() {
        if (stopped.compareAndSet(false, true)) {
            herder.stop();
        }
    }

    private synchronized void emit(Map<String, Object> message) throws Exception {
        out.println(json.writeValueAsString(message));
        out.flush();
    }
}
