# Shared shell helpers for wifisess test scripts. Source it:  . "$(dirname "$0")/lib/common.sh"
# Bash only. Defines: REPO_ROOT, log, die, now_s, run_stage, print_stage_summary.

REPO_ROOT="${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export REPO_ROOT

# Where scripts keep downloads between runs (.debs, kernels, ...). Outside the repository, so a
# fresh clone or `git clean` does not throw them away.
WIFISESS_CACHE="${WIFISESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wifisess}"
export WIFISESS_CACHE

log() { printf '%s: %s\n' "${LOG_TAG:-$(basename "$0")}" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_s() { date +%s; }

# run_stage NAME CMD... : runs CMD, prints "== stage NAME: ok in N s" (or "FAILED (exit C) in
# N s") and records the result for print_stage_summary. Returns CMD's exit status.
STAGE_RESULTS=()
run_stage() {
    local name="$1"; shift
    local t0 rc dt
    printf '\n== stage %s: start (%s)\n' "$name" "$*"
    t0=$(now_s)
    set +e
    "$@"
    rc=$?
    set -e
    dt=$(( $(now_s) - t0 ))
    if [ "$rc" -eq 0 ]; then
        printf '== stage %s: ok in %d s\n' "$name" "$dt"
        STAGE_RESULTS+=("$(printf '%-14s ok      %5d s' "$name" "$dt")")
    else
        printf '== stage %s: FAILED (exit %d) in %d s\n' "$name" "$rc" "$dt"
        STAGE_RESULTS+=("$(printf '%-14s FAILED  %5d s  (exit %d)' "$name" "$dt" "$rc")")
    fi
    return "$rc"
}

# skip_stage NAME REASON : records a stage that did not run.
skip_stage() {
    printf '\n== stage %s: skipped (%s)\n' "$1" "$2"
    STAGE_RESULTS+=("$(printf '%-14s skipped          (%s)' "$1" "$2")")
}

print_stage_summary() {
    local title="${1:-summary}"
    printf '\n== %s\n' "$title"
    local r
    for r in "${STAGE_RESULTS[@]}"; do printf '   %s\n' "$r"; done
}

# run_logged LOGFILE CMD... : runs CMD (stdin from /dev/null) with its output on stdout and in
# LOGFILE, stopped after $STAGE_TIMEOUT seconds (default 3600; the hang guard). Afterwards ends
# every process CMD left behind in its process group (e.g. a broker a failing test did not
# stop): such a process would otherwise keep the output pipe open and hang the run (and CI).
# Returns CMD's exit status (124 on timeout).
run_logged() {
    local logf="$1"; shift
    local fd tee_pid pid rc=0
    exec {fd}> >(tee "$logf")
    tee_pid=$!
    timeout -k 30 "${STAGE_TIMEOUT:-3600}" "$@" >&"$fd" 2>&1 </dev/null &
    pid=$!
    wait "$pid" || rc=$?
    [ "$rc" -eq 124 ] && log "timed out after ${STAGE_TIMEOUT:-3600} s: $*"
    reap_group "$pid"
    exec {fd}>&-
    wait "$tee_pid" 2>/dev/null || true
    return "$rc"
}

# reap_group PGID : ends the processes still in process group PGID (`timeout` makes one for
# the command it runs), by pid, and names them.
reap_group() {
    local left p desc=""
    left=$(pgrep -g "$1" 2>/dev/null | tr '\n' ' ' || true)
    [ -n "${left// /}" ] || return 0
    for p in $left; do desc+="$p:$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80); "; done
    log "warning: processes left running after the command (a test did not stop them); ending: $desc"
    # shellcheck disable=SC2086
    kill $left 2>/dev/null || true
    sleep 1
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null || true
}
