#!/usr/bin/env bash
# Installs what the test suites need (Debian 12, root). See tests/lib/install-deps.sh for groups.
exec bash "$(dirname "${BASH_SOURCE[0]}")/lib/install-deps.sh" "$@"
