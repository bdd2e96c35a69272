#!/usr/bin/env bash
# capacity-all.sh — the measurements of CAPACITY.md, with perf/capacity.sh.
# Builds the shared harness (for its nats-server), perf/capacity and the
# consumer (and, with BASE=<git rev>, the consumer of that revision, run in
# turn with the current one, run by run).
#   [BASE=<git rev>] [RATES='2000 3000 4000'] [SKIP_MEMORY=1] perf/capacity-all.sh [OUT] [RUNS]   (default /tmp/perf/capacity.txt, 3; ~25 minutes)
# NEW_BIN=<binary> uses that build instead of building the working tree.
# Run it on an otherwise idle machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=$(cd "$root/../shared/perf" && pwd)
out=${1:-/tmp/perf/capacity.txt}
runs=${2:-3}
mkdir -p /tmp/perf/bin
(cd "$shared" && go build -o /tmp/perf/bin/perf .)
[[ -n ${NEW_BIN:-} ]] && cp "$NEW_BIN" /tmp/perf/bin/consumer || (cd "$root" && go build -o /tmp/perf/bin/consumer ./cmd/consumer)
(cd "$root" && go build -o /tmp/perf/bin/capacity ./perf/capacity)
export PERF=/tmp/perf/bin/perf CAPACITY=/tmp/perf/bin/capacity
builds=(new)
if [[ -n ${BASE:-} ]]; then
	tmp=$(mktemp -d)
	git -C "$root" archive "$BASE" | tar -x -C "$tmp"
	(cd "$tmp" && go build -o /tmp/perf/bin/consumer-base ./cmd/consumer)
	rm -rf "$tmp"
	builds=(base new)
fi
bin() { [[ $1 == base ]] && echo /tmp/perf/bin/consumer-base || echo /tmp/perf/bin/consumer; }

# 1. Memory per call in flight: 2000/s at a flat 2 s, about 4000 calls in
#    flight, below the CPU bound. Workers and MaxAckPending set high for
#    both builds, so only the memory per call differs; the current build
#    also with ACTIONS_GC_PERCENT=100.
for r in $(seq "$runs"); do
	[[ -n ${SKIP_MEMORY:-} ]] && break
	for b in "${builds[@]}"; do
		CONSUMER=$(bin $b) EXTRA_ENV="ACTIONS_MAX_ACK_PENDING=16384" \
			"$here/capacity.sh" -name "$b-memory" -workers 8192 -rate 2000 -duration 15s -dist flat2000ms -out "$out"
	done
	CONSUMER=$(bin new) EXTRA_ENV="ACTIONS_MAX_ACK_PENDING=16384 ACTIONS_GC_PERCENT=100" \
		"$here/capacity.sh" -name "new-memory-gc100" -workers 8192 -rate 2000 -duration 15s -dist flat2000ms -out "$out"
done
# 2. Throughput at 200 ms with a tail (5 % at 1-2 s, mean 265 ms) at rising
#    offered rates. floor: the shared harness's floor with 2048 workers;
#    base: the issue's settings (1024 workers, MaxAckPending 1024); new:
#    sized by ACTIONS_EXPECTED_RATE and ACTIONS_EXPECTED_LATENCY (C=auto).
for rate in ${RATES:-2000 3000 4000}; do
	for r in $(seq "$runs"); do
		"$here/capacity.sh" -name floor-tail -pipeline floor -workers 2048 -rate "$rate" -duration 20s -dist tail -out "$out"
		for b in "${builds[@]}"; do
			if [[ $b == base ]]; then
				CONSUMER=$(bin $b) EXTRA_ENV="ACTIONS_MAX_ACK_PENDING=1024" \
					"$here/capacity.sh" -name "$b-tail" -workers 1024 -rate "$rate" -duration 20s -dist tail -out "$out"
			else
				CONSUMER=$(bin $b) EXTRA_ENV="ACTIONS_EXPECTED_RATE=$rate ACTIONS_EXPECTED_LATENCY=265ms" \
					"$here/capacity.sh" -name "$b-tail" -workers auto -rate "$rate" -duration 20s -dist tail -out "$out"
			fi
		done
	done
done
