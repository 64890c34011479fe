#!/bin/sh
# A tiny service put in place of /usr/bin/wifisess-agent in the openwrt-userland root
# (tests/package/facts.sh): one line on stdout, one on stderr, then it runs until SIGTERM.
echo "service-standin stdout: routine line ($*)"
echo "service-standin stderr: error line" >&2
trap 'kill "$s" 2>/dev/null; exit 0' TERM INT
sleep 100000 &
s=$!
wait "$s"
