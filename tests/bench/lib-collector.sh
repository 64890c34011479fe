# Shared helpers of the collector benchmarks (tests/bench/{ingest,queries,retention}.sh).
# Source it after `set -euo pipefail`. Defines: BENCH_DIR, LG (wifisess-loadgen), COLL
# (wifisess-collector), build_bins, free_port, start_broker, stop_pid, start_collector,
# wait_subscribed, summary_of, jget, machine_line. Every process it starts is stopped by pid
# on exit (bench_cleanup).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
BENCH_DIR="${BENCH_DIR:-$REPO_ROOT/target/bench}"
PROFILE="${BENCH_PROFILE:-server}"   # the cargo profile (target/<profile>/); `debug` = dev
LG="$REPO_ROOT/target/$PROFILE/wifisess-loadgen"
COLL="${BENCH_COLLECTOR:-$REPO_ROOT/target/$PROFILE/wifisess-collector}"   # BENCH_COLLECTOR: another build to compare
mkdir -p "$BENCH_DIR"
BENCH_PIDS=()

blog() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
bdie() { blog "error: $*"; exit 1; }

bench_cleanup() {
    local p i
    for p in "${BENCH_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    # A wedged collector ignores SIGTERM (docs/BENCHMARKS.md): SIGKILL after 5 s.
    for i in $(seq 50); do
        for p in "${BENCH_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && break; p=; done
        [ -z "${p:-}" ] && break
        sleep 0.1
    done
    for p in "${BENCH_PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
trap bench_cleanup EXIT

# The collector and the load generator, optimised (the collector's `server` profile);
# nothing with BENCH_SKIP_BUILD=1 (the binaries already built are used).
build_bins() {
    [ "${BENCH_SKIP_BUILD:-0}" = 1 ] && return 0
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || {
        blog "installing mosquitto"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
    }
    local prof=(--profile "$PROFILE")
    [ "$PROFILE" = debug ] && prof=()   # BENCH_PROFILE=debug: the dev build (smoke runs)
    blog "building wifisess-collector and wifisess-loadgen (${prof[*]:-dev profile})"
    cargo build -q "${prof[@]}" -p wifisess-collector -p wifisess-loadgen
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_broker DIR : a private mosquitto on a free port; sets BROKER_PORT and BROKER_PID.
# max_inflight_messages 100 as in docs/mosquitto-wifisess.conf.example (override with
# BENCH_INFLIGHT); unlimited queue so a backlog for the collector is never dropped.
start_broker() {
    local dir=$1 i
    mkdir -p "$dir"
    BROKER_PORT=$(free_port)
    cat >"$dir/mosquitto.conf" <<EOF
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages ${BENCH_QUEUED:-0}
max_inflight_messages ${BENCH_INFLIGHT:-100}
max_packet_size 266240
log_dest stderr
log_type error
log_type warning
EOF
    local bin=mosquitto
    [ -x /usr/sbin/mosquitto ] && bin=/usr/sbin/mosquitto
    "$bin" -c "$dir/mosquitto.conf" 2>"$dir/mosquitto.log" &
    BROKER_PID=$!
    BENCH_PIDS+=("$BROKER_PID")
    for i in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    bdie "mosquitto did not listen on $BROKER_PORT"
}

# stop_pid PID : SIGTERM, wait; returns the exit status.
stop_pid() {
    local rc=0
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || rc=$?
    return "$rc"
}

# start_collector DB LOG [ENV=VALUE...] : `wifisess-collector run` on the broker; sets COLL_PID.
start_collector() {
    local db=$1 logf=$2; shift 2
    env WIFISESS_CLIENT_ID="bench-collector-$BROKER_PORT" "$@" \
        "$COLL" run --db "$db" --broker "mqtt://127.0.0.1:$BROKER_PORT" --http off 2>"$logf" &
    COLL_PID=$!
    BENCH_PIDS+=("$COLL_PID")
}

# wait_subscribed DB : publishes one retained status (device probe-00000) and waits until the
# collector stored it, which proves its subscription is in place.
wait_subscribed() {
    local db=$1 i n
    "$LG" publish --broker "mqtt://127.0.0.1:$BROKER_PORT" --devices 1 --events 0 \
        --device-prefix probe- --timeout 30 >/dev/null
    for i in $(seq 600); do
        n=$(sqlite3 -readonly "file:$db?mode=ro" \
            "SELECT count(*) FROM devices WHERE id = 'probe-00000'" 2>/dev/null || echo 0)
        [ "$n" = 1 ] && return 0
        kill -0 "$COLL_PID" 2>/dev/null || bdie "the collector exited (log: see above)"
        sleep 0.05
    done
    bdie "the collector did not store the probe status within 30 s"
}

# summary_of FILE : the JSON of the `SUMMARY {json}` line of a loadgen output file.
summary_of() { sed -n 's/^SUMMARY //p' "$1" | tail -n 1; }

# jget FILE EXPR : a jq expression on the summary of FILE.
jget() { summary_of "$1" | jq -r "$2"; }

# machine_line : what docs/BENCHMARKS.md records about the machine.
machine_line() {
    printf 'machine: %s, nproc %s, %s, %s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")" \
        "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
        "$(date -u +%Y-%m-%d)"
}

# bench_workdir NAME: a fresh $BENCH_DIR/NAME, printed (the benchmark's files and databases).
bench_workdir() {
    local w="$BENCH_DIR/$1"
    rm -rf "$w" && mkdir -p "$w" && echo "$w"
}
