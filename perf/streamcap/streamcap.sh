#!/usr/bin/env bash
# streamcap.sh — the serial cost of one trigger stream in nats-server, and
# the rate it caps one stream at on any number of cores (CAPACITY.md, "From
# one box to a fleet"). For each configuration it runs perf/streamcap with a
# CPU profile and reads, per trigger, the on-CPU time of the goroutines that
# work for one stream or one consumer one at a time:
#   internalLoop       the stream's inbound publishes (R1: stores them; R3: the leader proposes them)
#   monitorStream      R3: applying the replicated entries (stores), on every node; per node
#   monitorConsumer    R3: applying the replicated acks and deliveries, on every node; per node
#   inboundAcks        the consumer leader's ack processing (setLeader.func3)
#   deliver            the consumer leader's delivery loop (loopAndGatherMsgs)
# The busiest of them bounds the stream at 1e6/us triggers/s.
#
#   perf/streamcap/streamcap.sh [N] [REPS] >> perf/results-2026-11-26-streamcap.txt
set -euo pipefail
n=${1:-100000}
reps=${2:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(mktemp -d)/streamcap
(cd "$root" && go build -o "$bin" ./perf/streamcap)
echo "# streamcap $(date -u +%FT%TZ) rev=$(cd "$root" && git rev-parse --short HEAD) n=$n nproc=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq "$reps"); do
	for cfg in "1 0" "3 0" "1 1" "3 1"; do
		set -- $cfg
		replicas=$1 pubonly=$2
		flags=(-replicas "$replicas" -n "$n" -cpuprofile "$bin.prof")
		[[ $pubonly = 1 ]] && flags+=(-publish-only)
		line=$("$bin" "${flags[@]}")
		nodes=1
		[[ $replicas = 3 ]] && nodes=3
		serial=$(go tool pprof -top -cum -nodecount=400 "$bin" "$bin.prof" 2>/dev/null | awk -v n="$n" -v nodes="$nodes" '
			function secs(v) { if (v ~ /ms$/) { sub(/ms$/, "", v); return v / 1000 } if (v ~ /us$/) { sub(/us$/, "", v); return v / 1e6 } sub(/s$/, "", v); return v }
			function put(name, v, per) { us = secs(v) * 1e6 / n / per; if (us > t[name]) t[name] = us }
			/server\.\(\*stream\)\.internalLoop$/        { put("internalLoop", $4, 1) }
			/server\.\(\*jetStream\)\.monitorStream$/    { put("monitorStream", $4, nodes) }
			/server\.\(\*jetStream\)\.monitorConsumer$/  { put("monitorConsumer", $4, nodes) }
			/server\.\(\*consumer\)\.processInboundAcks$/ { put("inboundAcks", $4, 1) }
			/server\.\(\*consumer\)\.loopAndGatherMsgs$/ { put("deliver", $4, 1) }
			END {
				max = 0; out = ""
				for (k in t) { out = out sprintf(" %s_us=%.1f", k, t[k]); if (t[k] > max) { max = t[k]; busiest = k } }
				printf "%s busiest=%s cap_per_stream=%.0f/s", out, busiest, (max > 0 ? 1e6 / max : 0)
			}')
		echo "$line$serial"
	done
done
