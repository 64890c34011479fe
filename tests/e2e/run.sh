#!/usr/bin/env bash
# The end-to-end tests (issue 7): installs what they need, builds the collector and the e2e
# decoder on the host (shared target/), then runs tests/e2e/e2e.py, which starts mosquitto and
# the collector, boots the hwsim VM (tests/hwsim/lab.sh) with two APs as two devices and
# client radios, runs the scenarios and prints the accuracy table.
#
# usage: tests/e2e/run.sh [SCENARIO...]     (default: all; tests/e2e/e2e.py --list names them)
# environment: E2E_VERBOSE=1 shows the VM console live; E2E_RELEASE_AGENT=1 puts the release
# agent build in the VM; WIFISESS_SKIP_INSTALL=1 installs nothing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"
t0=$(date +%s)
bash tests/install-deps.sh services vmlab >&2
echo "e2e: building wifisess-collector and the e2e decoder" >&2
cargo build -q -p wifisess-collector >&2
cargo build -q --manifest-path tests/e2e/decode/Cargo.toml --target-dir "${CARGO_TARGET_DIR:-target}" >&2
echo "e2e: builds ready in $(( $(date +%s) - t0 )) s" >&2
exec python3 "$HERE/e2e.py" "$@"
