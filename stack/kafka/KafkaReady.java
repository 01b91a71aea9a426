// Readiness probe for the local Kafka broker, used by stack/stack.sh when no Python with
// confluent_kafka is at hand. Run as a single-file program with the broker's own jars:
//   java -cp "$KAFKA_JARS/*" stack/kafka/KafkaReady.java 127.0.0.1:9092 [timeout_seconds]
// Exits 0 once the cluster metadata lists at least one broker (the broker is registered
// with the controller and unfenced), 1 otherwise.
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class KafkaReady {
    public static void main(String[] args) throws Exception {
        String bootstrap = args.length > 0 ? args[0] : "127.0.0.1:9092";
        long timeoutMs = (args.length > 1 ? Long.parseLong(args[1]) : 10) * 1000L;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(timeoutMs));
        long deadline = System.currentTimeMillis() + timeoutMs;
        try (Admin admin = Admin.create(props)) {
            while (System.currentTimeMillis() < deadline) {
                try {
                    int brokers = admin.describeCluster().nodes().get(3, TimeUnit.SECONDS).size();
                    admin.listTopics().names().get(3, TimeUnit.SECONDS);
                    if (brokers > 0) {
                        System.out.println("kafka ready: " + brokers + " broker(s)");
                        System.exit(0);
                    }
                } catch (Exception e) {
                    // not ready yet; retry until the deadline
                }
                Thread.sleep(500);
            }
        }
        System.err.println("kafka not ready at " + bootstrap);
        System.exit(1);
    }
}
