#!/usr/bin/env bash
# run-all.sh — the measurements of PERFORMANCE.md, with ../shared/perf.
# Every row: a fresh JetStream store, the perf mock API, one run; the
# pipelines of one configuration take turns run by run (floor,
# floor-contract, consumer, floor, ...) so that drift of the machine hits
# them alike.
#   perf/run-all.sh [OUT] [RUNS]      (default /tmp/perf/results.txt, 3; ~25 minutes)
# Run it on an otherwise idle machine: drive, nats-server, the mock API and
# the pipeline share its cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=$(cd "$root/../shared/perf" && pwd)
out=${1:-/tmp/perf/results.txt}
runs=${2:-3}
mkdir -p /tmp/perf/bin
(cd "$shared" && go build -o /tmp/perf/bin/perf .)
(cd "$root" && go build -o /tmp/perf/bin/consumer ./cmd/consumer && go build -o /tmp/perf/bin/authmock ./perf/authmock &&
	go build -o /tmp/perf/bin/floorcontract ./perf/floorcontract)
export PERF=/tmp/perf/bin/perf CONSUMER=/tmp/perf/bin/consumer
bench() { "$shared/bench.sh" -out "$out" -runs 1 "$@"; }
floor='$PERF floor -nats $NATS_URL -concurrency $C'
contract='/tmp/perf/bin/floorcontract -nats $NATS_URL -concurrency $C'
ours="$here/consumer.sh"

for lat in 0ms 20ms; do
	for c in 16 64; do
		for r in $(seq "$runs"); do
			bench -name floor -c $c -latency $lat -n 20000 -timeout 120s -- "$floor"
			bench -name floor-contract -c $c -latency $lat -n 20000 -timeout 120s -- "$contract"
			bench -name consumer -c $c -latency $lat -n 20000 -timeout 120s -- "$ours"
		done
	done
done
# latency at a fixed rate below saturation
for r in $(seq "$runs"); do
	bench -name floor -c 16 -latency 0ms -n 5000 -rate 500 -- "$floor"
	bench -name floor-contract -c 16 -latency 0ms -n 5000 -rate 500 -- "$contract"
	bench -name consumer -c 16 -latency 0ms -n 5000 -rate 500 -- "$ours"
done
# HTTP-request token rotating every 3 s under load, beside the text token
/tmp/perf/bin/authmock -addr 127.0.0.1:18081 -expires-in 3 >/tmp/perf/authmock.log 2>&1 &
amock=$!
trap 'kill $amock 2>/dev/null || true' EXIT
sleep 0.3
for c in 16 64; do
	for r in $(seq "$runs"); do
		bench -name consumer-text -c $c -latency 0ms -n 20000 -- "$ours"
		before=$(curl -s http://127.0.0.1:18081/stats)
		TOKENS_FILE="$here/bench-http-token.json" bench -name consumer-httptoken -c $c -latency 0ms -n 20000 -- "$ours"
		echo "auth requests during consumer-httptoken c=$c run=$r: before=$before after=$(curl -s http://127.0.0.1:18081/stats)" | tee -a "$out.auth"
	done
done
"$shared/summarize.sh" "$out"
