#!/usr/bin/env bash
# run-all.sh — the measurements of PERFORMANCE.md, with ../shared/perf.
# Every row: a fresh JetStream store, the perf mock API, 3 runs.
#   perf/run-all.sh [OUT]      (default /tmp/perf/results.txt; ~15 minutes)
# Run it on an otherwise idle machine: drive, nats-server, the mock API and
# the pipeline share its cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=$(cd "$root/../shared/perf" && pwd)
out=${1:-/tmp/perf/results.txt}
mkdir -p /tmp/perf/bin
(cd "$shared" && go build -o /tmp/perf/bin/perf .)
(cd "$root" && go build -o /tmp/perf/bin/consumer ./cmd/consumer && go build -o /tmp/perf/bin/authmock ./perf/authmock)
export PERF=/tmp/perf/bin/perf CONSUMER=/tmp/perf/bin/consumer
bench() { "$shared/bench.sh" -out "$out" "$@"; }
floor='$PERF floor -nats $NATS_URL -concurrency $C'
ours="$here/consumer.sh"

for lat in 0ms 20ms; do
	for c in 16 64; do
		bench -name floor -c $c -latency $lat -n 20000 -runs 3 -timeout 120s -- "$floor"
		bench -name consumer -c $c -latency $lat -n 20000 -runs 3 -timeout 120s -- "$ours"
	done
done
# latency at a fixed rate below saturation
bench -name floor -c 16 -latency 0ms -n 5000 -rate 500 -runs 3 -- "$floor"
bench -name consumer -c 16 -latency 0ms -n 5000 -rate 500 -runs 3 -- "$ours"
# HTTP-request token rotating every 3 s under load
/tmp/perf/bin/authmock -addr 127.0.0.1:18081 -expires-in 3 >/tmp/perf/authmock.log 2>&1 &
amock=$!
trap 'kill $amock 2>/dev/null || true' EXIT
sleep 0.3
for c in 16 64; do
	before=$(curl -s http://127.0.0.1:18081/stats)
	TOKENS_FILE="$here/bench-http-token.json" bench -name consumer-httptoken -c $c -latency 0ms -n 20000 -runs 3 -- "$ours"
	echo "auth requests during consumer-httptoken c=$c: before=$before after=$(curl -s http://127.0.0.1:18081/stats)" | tee -a "$out.auth"
done
"$shared/summarize.sh" "$out"
