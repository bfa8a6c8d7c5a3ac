import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Scenarios for Apache Kafka's Java client against a broker; each prints one JSON object
 * of what the client saw as its last line of output.
 *
 * <p>java -cp 'lib/*' ClientScenarios.java BOOTSTRAP SCENARIO TOPIC [GROUP_PROTOCOL]
 */
public class ClientScenarios {
    private static final Duration POLL = Duration.ofMillis(200);
    private static final long DEADLINE_MS = 60_000;

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String scenario = args[1];
        String topic = args[2];
        String groupProtocol = args.length > 3 ? args[3] : "classic";
        ClientScenarios scenarios = new ClientScenarios(bootstrap, topic, groupProtocol);
        Map<String, Object> seen = switch (scenario) {
            case "admin" -> scenarios.admin();
            case "roundtrip" -> scenarios.roundtrip();
            case "group" -> scenarios.group();
            case "transactions" -> scenarios.transactions();
            case "offsets" -> scenarios.offsets();
            default -> throw new IllegalArgumentException("unknown scenario " + scenario);
        };
        System.out.println(new ObjectMapper().writeValueAsString(seen));
    }

    private final String bootstrap;
    private final String topic;
    private final String groupProtocol;

    ClientScenarios(String bootstrap, String topic, String groupProtocol) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.groupProtocol = groupProtocol;
    }

    private Properties common() {
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        return props;
    }

    private KafkaProducer<String, String> producer(Map<String, Object> overrides) {
        Properties props = common();
        props.put("key.serializer", StringSerializer.class.getName());
        props.put("value.serializer", StringSerializer.class.getName());
        props.put("linger.ms", 5);
        props.putAll(overrides);
        return new KafkaProducer<>(props);
    }

    private KafkaConsumer<String, String> consumer(Map<String, Object> overrides) {
        Properties props = common();
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        props.put("auto.offset.reset", "earliest");
        props.put("enable.auto.commit", "false");
        props.putAll(overrides);
        return new KafkaConsumer<>(props);
    }

    private static Map<String, Object> describe(ConsumerRecord<String, String> record) {
        Map<String, Object> seen = new LinkedHashMap<>();
        seen.put("partition", record.partition());
        seen.put("offset", record.offset());
        seen.put("key", record.key());
        seen.put("value", record.value());
        seen.put("timestamp", record.timestamp());
        seen.put("timestampType", record.timestampType().toString());
        Map<String, String> headers = new TreeMap<>();
        for (Header header : record.headers()) {
            headers.put(header.key(), new String(header.value(), StandardCharsets.UTF_8));
        }
        seen.put("headers", headers);
        return seen;
    }

    /** Polls until `count` records arrived or the deadline passed. */
    private static List<ConsumerRecord<String, String>> pollFor(
            KafkaConsumer<String, String> consumer, int count) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        while (got.size() < count && System.currentTimeMillis() < deadline) {
            consumer.poll(POLL).forEach(got::add);
        }
        return got;
    }

    private static boolean caughtUp(KafkaConsumer<String, String> consumer, int partitions, long end) {
        Set<TopicPartition> assigned = consumer.assignment();
        return assigned.size() == partitions
                && assigned.stream().allMatch(tp -> consumer.position(tp) == end);
    }

    private static String errorName(ExecutionException e) {
        return e.getCause().getClass().getSimpleName();
    }

    Map<String, Object> admin() throws Exception {
        Map<String, Object> seen = new LinkedHashMap<>();
        try (Admin admin = Admin.create(common())) {
            NewTopic newTopic = new NewTopic(topic, 3, (short) 1)
                    .configs(Map.of("retention.ms", "3600000", "cleanup.policy", "compact"));
            admin.createTopics(List.of(newTopic)).all().get();
            try {
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
                seen.put("createAgain", "created");
            } catch (ExecutionException e) {
                seen.put("createAgain", errorName(e));
            }
            try {
                admin.createTopics(List.of(new NewTopic(topic + "-bad", 1, (short) 1)
                        .configs(Map.of("cleanup.policy", "sideways")))).all().get();
                seen.put("badConfig", "created");
            } catch (ExecutionException e) {
                seen.put("badConfig", errorName(e));
            }
            seen.put("listed", admin.listTopics().names().get().contains(topic));
            TopicDescription description =
                    admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            seen.put("partitions", description.partitions().size());
            seen.put("topicIdSet", !description.topicId().toString().equals("AAAAAAAAAAAAAAAAAAAAAA"));
            seen.put("nodes", admin.describeCluster().nodes().get().size());
            seen.put("clusterId", admin.describeCluster().clusterId().get());

            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            seen.put("retention", config.get("retention.ms").value());
            seen.put("retentionSource", config.get("retention.ms").source().toString());
            seen.put("cleanupPolicy", config.get("cleanup.policy").value());
            seen.put("segmentBytesSource", config.get("segment.bytes").source().toString());
            admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                    new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET))))
                    .all().get();
            seen.put("altered", admin.describeConfigs(List.of(resource)).all().get()
                    .get(resource).get("retention.ms").value());
            try {
                admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                        new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET))))
                        .all().get();
                seen.put("badAlter", "altered");
            } catch (ExecutionException e) {
                seen.put("badAlter", errorName(e));
            }
            ConfigResource brokerResource = new ConfigResource(ConfigResource.Type.BROKER, "0");
            Config brokerConfig = admin.describeConfigs(List.of(brokerResource)).all().get()
                    .get(brokerResource);
            seen.put("brokerAutoCreate", brokerConfig.get("auto.create.topics.enable").value());

            try (KafkaProducer<String, String> producer = producer(Map.of())) {
                producer.send(new ProducerRecord<>(topic, 0, "k", "stored")).get();
            }
            Map<String, org.apache.kafka.clients.admin.LogDirDescription> logDirs =
                    admin.describeLogDirs(List.of(0)).allDescriptions().get().get(0);
            seen.put("logDirCount", logDirs.size());
            for (Map.Entry<String, org.apache.kafka.clients.admin.LogDirDescription> dir
                    : logDirs.entrySet()) {
                seen.put("logDir", dir.getKey());
                Map<String, Long> sizes = new TreeMap<>();
                dir.getValue().replicaInfos().forEach((tp, info) -> {
                    if (tp.topic().equals(topic)) {
                        sizes.put(Integer.toString(tp.partition()), info.size());
                    }
                });
                seen.put("partitionSizes", sizes);
                seen.put("volumeKnown", dir.getValue().totalBytes().orElse(-1)
                        >= dir.getValue().usableBytes().orElse(-1)
                        && dir.getValue().usableBytes().orElse(-1) > 0);
            }
            seen.put("clusterOperations", new java.util.TreeSet<>(admin.describeCluster(
                    new org.apache.kafka.clients.admin.DescribeClusterOptions()
                            .includeAuthorizedOperations(true))
                    .authorizedOperations().get()).toString());

            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
            seen.put("grown", admin.describeTopics(List.of(topic)).allTopicNames().get()
                    .get(topic).partitions().size());
            admin.deleteTopics(List.of(topic)).all().get();
            seen.put("listedAfterDelete", admin.listTopics().names().get().contains(topic));
        }
        return seen;
    }

    Map<String, Object> roundtrip() throws Exception {
        Map<String, Object> seen = new LinkedHashMap<>();
        try (Admin admin = Admin.create(common())) {
            admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get();
        }
        List<String> codecs = List.of("none", "gzip", "snappy", "lz4", "zstd");
        Map<String, Object> offsets = new LinkedHashMap<>();
        for (String codec : codecs) {
            try (KafkaProducer<String, String> producer =
                    producer(Map.of("compression.type", codec))) {
                List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
                for (int i = 0; i < 200; i++) {
                    ProducerRecord<String, String> record = new ProducerRecord<>(
                            topic, null, null, "key-" + (i % 8), codec + "-" + i);
                    record.headers().add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                    sent.add(producer.send(record));
                }
                RecordMetadata last = sent.get(sent.size() - 1).get();
                offsets.put(codec, last.offset() >= 0);
            }
        }
        seen.put("acked", offsets);
        try (KafkaProducer<String, String> producer = producer(Map.of())) {
            producer.send(new ProducerRecord<String, String>(topic, 0, 1_600_000_000_000L, "tombstone", (String) null)).get();
            producer.send(new ProducerRecord<>(topic, 0, null, "empty", "")).get();
            String big = "x".repeat(1024 * 1024 - 100);
            producer.send(new ProducerRecord<>(topic, 1, null, "big", big)).get();
        }
        List<Map<String, Object>> received = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = consumer(Map.of(
                "max.partition.fetch.bytes", 2 * 1024 * 1024))) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (int p = 0; p < 4; p++) {
                partitions.add(new TopicPartition(topic, p));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            for (ConsumerRecord<String, String> record : pollFor(consumer, 1003)) {
                Map<String, Object> described = describe(record);
                if ("big".equals(record.key())) {
                    described.put("value", "length:" + record.value().length());
                }
                received.add(described);
            }
            Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
            long total = 0;
            for (long end : ends.values()) {
                total += end;
            }
            seen.put("endOffsetsTotal", total);
        }
        seen.put("received", received);
        return seen;
    }

    Map<String, Object> group() throws Exception {
        Map<String, Object> seen = new LinkedHashMap<>();
        String groupId = topic + "-group";
        try (Admin admin = Admin.create(common())) {
            admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get();
        }
        try (KafkaProducer<String, String> producer = producer(Map.of())) {
            for (int i = 0; i < 400; i++) {
                producer.send(new ProducerRecord<>(topic, i % 4, "k" + i, "v" + i));
            }
            producer.flush();
        }
        Map<String, Object> groupConfig = new HashMap<>(Map.of(
                "group.id", groupId, "group.protocol", groupProtocol));
        if (groupProtocol.equals("classic")) {
            // The consumer protocol takes these from the broker instead.
            groupConfig.put("session.timeout.ms", 10_000);
            groupConfig.put("heartbeat.interval.ms", 500);
        }
        KafkaConsumer<String, String> first = consumer(groupConfig);
        KafkaConsumer<String, String> second = consumer(groupConfig);
        first.subscribe(List.of(topic));
        second.subscribe(List.of(topic));
        Set<String> values = new java.util.HashSet<>();
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        // Until the group settled (two partitions each) and each member read its partitions
        // to the end, so that what the members commit covers every record.
        while (!(values.size() == 400 && caughtUp(first, 2, 100) && caughtUp(second, 2, 100))
                && System.currentTimeMillis() < deadline) {
            first.poll(POLL).forEach(r -> values.add(r.value()));
            second.poll(POLL).forEach(r -> values.add(r.value()));
        }
        seen.put("consumedByGroup", values.size());
        seen.put("firstAssigned", first.assignment().size());
        seen.put("secondAssigned", second.assignment().size());
        first.commitSync();
        second.commitSync();
        try (Admin admin = Admin.create(common())) {
            ConsumerGroupDescription description = admin.describeConsumerGroups(List.of(groupId))
                    .describedGroups().get(groupId).get();
            seen.put("state", description.groupState().toString());
            seen.put("members", description.members().size());
            seen.put("assignor", description.partitionAssignor());
            seen.put("groupOperations", new java.util.TreeSet<>(admin.describeConsumerGroups(
                    List.of(groupId), new org.apache.kafka.clients.admin.DescribeConsumerGroupsOptions()
                            .includeAuthorizedOperations(true))
                    .describedGroups().get(groupId).get().authorizedOperations()).toString());
        }
        first.close();
        // The remaining member takes over every partition at the next rebalance.
        deadline = System.currentTimeMillis() + DEADLINE_MS;
        while (second.assignment().size() < 4 && System.currentTimeMillis() < deadline) {
            second.poll(POLL);
        }
        seen.put("secondAfterLeave", second.assignment().size());
        second.close();

        try (KafkaProducer<String, String> producer = producer(Map.of())) {
            for (int i = 400; i < 420; i++) {
                producer.send(new ProducerRecord<>(topic, i % 4, "k" + i, "v" + i));
            }
            producer.flush();
        }
        try (KafkaConsumer<String, String> resumed = consumer(groupConfig)) {
            resumed.subscribe(List.of(topic));
            List<String> after = new ArrayList<>();
            for (ConsumerRecord<String, String> record : pollFor(resumed, 20)) {
                after.add(record.value());
            }
            // Nothing more should come: poll a little longer and count again.
            long quiet = System.currentTimeMillis() + 1000;
            while (System.currentTimeMillis() < quiet) {
                resumed.poll(POLL).forEach(r -> after.add(r.value()));
            }
            seen.put("resumedValues", after);
            resumed.commitSync();
        }
        try (Admin admin = Admin.create(common())) {
            Map<TopicPartition, OffsetAndMetadata> committed = admin
                    .listConsumerGroupOffsets(groupId).partitionsToOffsetAndMetadata().get();
            long total = 0;
            for (OffsetAndMetadata offset : committed.values()) {
                total += offset.offset();
            }
            seen.put("committedTotal", total);
            admin.deleteConsumerGroups(List.of(groupId)).all().get();
            seen.put("groupsAfterDelete", admin.listGroups().all().get().stream()
                    .anyMatch(g -> g.groupId().equals(groupId)));
        }
        return seen;
    }

    Map<String, Object> transactions() throws Exception {
        Map<String, Object> seen = new LinkedHashMap<>();
        String output = topic + "-out";
        String groupId = topic + "-group";
        try (Admin admin = Admin.create(common())) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1),
                    new NewTopic(output, 2, (short) 1))).all().get();
        }
        try (KafkaProducer<String, String> producer = producer(Map.of())) {
            for (int i = 0; i < 100; i++) {
                producer.send(new ProducerRecord<>(topic, i % 2, "k" + i, "in-" + i));
            }
            producer.flush();
        }
        // Consume-transform-produce: outputs and input offsets commit together.
        Map<String, Object> txConfig = Map.of("transactional.id", topic + "-tx");
        try (KafkaProducer<String, String> producer = producer(txConfig);
                KafkaConsumer<String, String> consumer = consumer(Map.of(
                        "group.id", groupId, "isolation.level", "read_committed"))) {
            producer.initTransactions();
            consumer.subscribe(List.of(topic));
            int done = 0;
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (done < 100 && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = consumer.poll(POLL);
                if (records.isEmpty()) {
                    continue;
                }
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> positions = new HashMap<>();
                for (ConsumerRecord<String, String> record : records) {
                    producer.send(new ProducerRecord<>(output, record.partition(), record.key(),
                            record.value().replace("in-", "out-")));
                    positions.put(new TopicPartition(record.topic(), record.partition()),
                            new OffsetAndMetadata(record.offset() + 1));
                    done++;
                }
                producer.sendOffsetsToTransaction(positions, consumer.groupMetadata());
                producer.commitTransaction();
            }
            seen.put("transformed", done);
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(output, 0, "aborted", "aborted-0"));
            producer.send(new ProducerRecord<>(output, 1, "aborted", "aborted-1"));
            producer.flush();
            producer.abortTransaction();
        }
        // A second producer with the same transactional.id fences nothing open; its commit lands.
        try (KafkaProducer<String, String> producer = producer(txConfig)) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(output, 0, "last", "committed-last"));
            producer.commitTransaction();
        }
        List<TopicPartition> outputs = List.of(
                new TopicPartition(output, 0), new TopicPartition(output, 1));
        for (String isolation : List.of("read_committed", "read_uncommitted")) {
            try (KafkaConsumer<String, String> reader = consumer(Map.of("isolation.level", isolation))) {
                reader.assign(outputs);
                reader.seekToBeginning(outputs);
                List<String> values = new ArrayList<>();
                long quiet = System.currentTimeMillis() + 3000;
                while (System.currentTimeMillis() < quiet) {
                    reader.poll(POLL).forEach(r -> values.add(r.value()));
                }
                seen.put(isolation, values);
            }
        }
        try (Admin admin = Admin.create(common())) {
            long total = 0;
            for (OffsetAndMetadata offset : admin.listConsumerGroupOffsets(groupId)
                    .partitionsToOffsetAndMetadata().get().values()) {
                total += offset.offset();
            }
            seen.put("committedInput", total);
            seen.put("transactionState", admin.describeTransactions(List.of(topic + "-tx"))
                    .all().get().get(topic + "-tx").state().toString());
        }
        return seen;
    }

    Map<String, Object> offsets() throws Exception {
        Map<String, Object> seen = new LinkedHashMap<>();
        TopicPartition partition = new TopicPartition(topic, 0);
        try (Admin admin = Admin.create(common())) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            try (KafkaProducer<String, String> producer = producer(Map.of())) {
                for (int i = 0; i < 10; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, 1_000_000L * (i + 1), "k", "v" + i)).get();
                }
            }
            Map<String, OffsetSpec> specs = new LinkedHashMap<>();
            specs.put("earliest", OffsetSpec.earliest());
            specs.put("latest", OffsetSpec.latest());
            specs.put("maxTimestamp", OffsetSpec.maxTimestamp());
            specs.put("forTime4500000", OffsetSpec.forTimestamp(4_500_000L));
            specs.put("forTimeAfterAll", OffsetSpec.forTimestamp(99_000_000L));
            for (Map.Entry<String, OffsetSpec> spec : specs.entrySet()) {
                ListOffsetsResult.ListOffsetsResultInfo info = admin
                        .listOffsets(Map.of(partition, spec.getValue())).partitionResult(partition).get();
                seen.put(spec.getKey(), List.of(info.offset(), info.timestamp()));
            }
            admin.deleteRecords(Map.of(partition, RecordsToDelete.beforeOffset(4))).all().get();
            seen.put("earliestAfterDelete", admin.listOffsets(Map.of(partition, OffsetSpec.earliest()))
                    .partitionResult(partition).get().offset());
        }
        try (KafkaConsumer<String, String> consumer = consumer(Map.of())) {
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            List<String> values = new ArrayList<>();
            for (ConsumerRecord<String, String> record : pollFor(consumer, 6)) {
                values.add(record.value());
            }
            seen.put("afterDelete", values);
            Map<TopicPartition, org.apache.kafka.clients.consumer.OffsetAndTimestamp> found =
                    consumer.offsetsForTimes(Map.of(partition, 7_500_000L));
            seen.put("offsetForTime7500000", found.get(partition).offset());
            // Seeking below the log start resets to it (auto.offset.reset=earliest).
            consumer.seek(partition, 1);
            List<ConsumerRecord<String, String>> reset = pollFor(consumer, 1);
            seen.put("resetTo", reset.isEmpty() ? -1 : reset.get(0).offset());
        }
        return seen;
    }
}
