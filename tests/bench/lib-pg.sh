#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the benchmarks: initdb into the bench directory, pg_ctl
# on a private socket directory (no TCP), fsync=on (benchmarks measure durable commits), as
# the postgres user when run as root (PostgreSQL refuses root). Stopped by pg_stop (and on
# exit by the caller's trap).
#   pg_start DIR [reuse]   sets PG_URL_BASE (append a database name) and PG_DIR; with
#                          `reuse`, a cluster already in DIR is started as it is (its data kept)
#   pg_createdb NAME
#   pg_stop
# environment: PG_DEADLOCK_TIMEOUT (default 100ms: lock waits longer than it are logged,
#   log_lock_waits=on), PG_OPTS (more `-c name=value` settings for the server)
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
[ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL is not installed: run tests/install-deps.sh services" >&2; exit 2; }

pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_start() {
    PG_DIR="$1"
    PG_PORT=5432
    if [ "${2:-}" != reuse ] || [ ! -e "$PG_DIR/data/PG_VERSION" ]; then
        rm -rf "$PG_DIR"; mkdir -p "$PG_DIR/sock"
        [ "$(id -u)" = 0 ] && chown -R postgres: "$PG_DIR"
        pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null
    fi
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -o "-p $PG_PORT -k $PG_DIR/sock \
        -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c shared_buffers=512MB \
        -c max_wal_size=4GB -c log_lock_waits=on -c deadlock_timeout=${PG_DEADLOCK_TIMEOUT:-100ms} \
        -c log_line_prefix='%m [%p] ' ${PG_OPTS:-}" start >/dev/null
    PG_URL_BASE="postgres:///@DB@?host=$PG_DIR/sock&port=$PG_PORT&user=postgres"
    PG_PID="$(head -n1 "$PG_DIR/data/postmaster.pid")"
}

pg_url() { echo "${PG_URL_BASE/@DB@/$1}"; }

pg_createdb() { psql -q -h "$PG_DIR/sock" -p "$PG_PORT" -U postgres -c "CREATE DATABASE $1" postgres; }

pg_psql() { psql -qAt -h "$PG_DIR/sock" -p "$PG_PORT" -U postgres "$@"; }

pg_stop() {
    [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ] && \
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" stop -m fast -w >/dev/null 2>&1 || true
}

# CPU seconds (user + system) of PostgreSQL: the postmaster and every backend, from
# /proc/PID/stat (children that ended are counted in the postmaster's cutime/cstime).
pg_cpu_s() {
    local total=0 p
    for p in $(pgrep -P "$PG_PID") "$PG_PID"; do
        [ -r /proc/$p/stat ] || continue
        total=$(awk -v t="$total" '{ print t + $14 + $15 + $16 + $17 }' "/proc/$p/stat")
    done
    awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
