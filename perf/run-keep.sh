#!/usr/bin/env bash
# run-keep.sh — the short form of run-all.sh for a change of the consumer:
# floor, floor-contract, the consumer at revision BASE and the current
# consumer take turns run by run at C=16 and C=64 (0 ms API, 20 000
# triggers), so all four compare within the same minutes.
# NEW_BIN=<binary> uses that build as the current consumer instead of building the working tree.
#   BASE=<git rev> perf/run-keep.sh [OUT] [RUNS]   (default /tmp/perf/keep.txt, 3; ~10 minutes)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=$(cd "$root/../shared/perf" && pwd)
out=${1:-/tmp/perf/keep.txt}
runs=${2:-3}
: "${BASE:?set BASE to the git revision to compare with}"
mkdir -p /tmp/perf/bin
(cd "$shared" && go build -o /tmp/perf/bin/perf .)
[[ -n ${NEW_BIN:-} ]] && cp "$NEW_BIN" /tmp/perf/bin/consumer || (cd "$root" && go build -o /tmp/perf/bin/consumer ./cmd/consumer)
(cd "$root" && go build -o /tmp/perf/bin/floorcontract ./perf/floorcontract)
tmp=$(mktemp -d)
git -C "$root" archive "$BASE" | tar -x -C "$tmp"
(cd "$tmp" && go build -o /tmp/perf/bin/consumer-base ./cmd/consumer)
rm -rf "$tmp"
export PERF=/tmp/perf/bin/perf
bench() { "$shared/bench.sh" -out "$out" -runs 1 "$@"; }
floor='$PERF floor -nats $NATS_URL -concurrency $C'
contract='/tmp/perf/bin/floorcontract -nats $NATS_URL -concurrency $C'
ours="$here/consumer.sh"
for c in 16 64; do
	for r in $(seq "$runs"); do
		bench -name floor -c $c -n 20000 -timeout 120s -- "$floor"
		bench -name floor-contract -c $c -n 20000 -timeout 120s -- "$contract"
		CONSUMER=/tmp/perf/bin/consumer-base bench -name consumer-base -c $c -n 20000 -timeout 120s -- "$ours"
		CONSUMER=/tmp/perf/bin/consumer bench -name consumer -c $c -n 20000 -timeout 120s -- "$ours"
	done
done
"$shared/summarize.sh" "$out"
