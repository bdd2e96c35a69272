#!/usr/bin/env bash
# run.sh — the cost of replication on the local 3-node cluster (CAPACITY.md,
# "On a 3-node cluster: the cost of replication"). For each configuration
# it brings up deploy/local-cluster.sh (3 nats-servers, CONSUMERS consumer
# processes, streams and buckets at ACTIONS_REPLICAS), starts the mock API
# of perf/capacity on 127.0.0.1, runs perf/cluster twice on that cluster
# and takes it down again:
#   (b) open loop at -rate R/s (default 500) for 20 s, the API at 200 ms;
#   (a) closed loop, 512 triggers outstanding, 40 000 triggers, the API at 0 ms;
#   (i) with -shapes "i ...": no load, the CPU of the idle cluster over 10 s.
# One line per load run goes to -out (and stdout).
#
#   perf/cluster/run.sh [-out FILE] [-reps 2] [-replicas "1 3"] [-consumers "1 2 3"] [-partitions 0]
#                       [-rate 500] [-n 40000] [-inflight 512] [-shapes "b a"]
#
# Configurations are interleaved: for each repetition, for each number of
# consumers, every replica count in turn (R1, R3, R1, R3, ...). nats-server,
# the consumer and the mock API are built once, from the committed HEAD (git
# archive), not from the working tree, so that edits in progress do not
# change them between runs; the drive (perf/cluster) from the working tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=/tmp/perf/cluster.txt reps=2 replicas="1 3" consumers="1 2 3" partitions=0
rate=500 n=40000 inflight=512 shapes="b a"
while [[ $# -gt 0 ]]; do
	case $1 in
	-out) out=$2; shift 2 ;;
	-reps) reps=$2; shift 2 ;;
	-replicas) replicas=$2; shift 2 ;;
	-consumers) consumers=$2; shift 2 ;;
	-partitions) partitions=$2; shift 2 ;;
	-rate) rate=$2; shift 2 ;;
	-n) n=$2; shift 2 ;;
	-inflight) inflight=$2; shift 2 ;;
	-shapes) shapes=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
work=/tmp/perf/cluster-work
bin=$work/bin
base=${BASE_PORT:-24235} # ports ending in 5-7: the deploy test's random bases end in 0
mock_addr=127.0.0.1:${MOCK_PORT:-18180}
mkdir -p "$bin" "$(dirname "$out")"

rev=$(git -C "$root" rev-parse --short HEAD)
rm -rf "$work/src" && mkdir -p "$work/src"
git -C "$root" archive HEAD | tar -x -C "$work/src"
(cd "$work/src" && go build -o "$bin/nats-server" github.com/nats-io/nats-server/v2 &&
	go build -o "$bin/consumer" ./cmd/consumer && go build -o "$bin/capacity" ./perf/capacity)
(cd "$root" && go build -o "$bin/cluster" ./perf/cluster) # the drive, from the working tree
echo "# $(date -u +%FT%TZ) rev=$rev nats-server $("$bin/nats-server" --version) reps=$reps replicas=[$replicas] consumers=[$consumers] partitions=$partitions nproc=$(nproc)" | tee -a "$out"

mock_pid=
cluster_dir=
cleanup() {
	[[ -n $cluster_dir ]] && BASE_PORT=$base "$root/deploy/local-cluster.sh" down "$cluster_dir" || true
	[[ -n $mock_pid ]] && kill "$mock_pid" 2>/dev/null || true
}
trap cleanup EXIT
"$bin/capacity" mockapi -addr "$mock_addr" >"$work/mock.log" 2>&1 &
mock_pid=$!

one() { # reps consumers partitions
	local r=$1 c=$2 p=$3 label
	cluster_dir=$work/run
	rm -rf "$cluster_dir" && mkdir -p "$cluster_dir/bin"
	cp "$bin/nats-server" "$bin/consumer" "$cluster_dir/bin/"
	label="config=R$r/c$c"
	((p > 1)) && label="$label/p$p"
	local t0=$SECONDS
	if ! SKIP_BUILD=1 BASE_PORT=$base CONSUMERS=$c ACTIONS_REPLICAS=$r ACTIONS_PARTITIONS=$p \
		ACTIONS_TOKENS_FILE="$root/perf/bench-token.json" ACTIONS_LOG_LEVEL=warn \
		"$root/deploy/local-cluster.sh" up "$cluster_dir" >"$work/up.log" 2>&1; then
		echo "$label rev=$rev up failed: $(tail -3 "$work/up.log" | tr '\n' ' ')" | tee -a "$out"
		return 0
	fi
	local up_s=$((SECONDS - t0))
	for shape in $shapes; do
		local args
		case $shape in
		a) args=(-inflight "$inflight" -n "$n" -warmup 2000 -latency-ms 0) ;;
		b) args=(-rate "$rate" -duration 20s -warmup-duration 3s -latency-ms 200) ;;
		i) args=(-idle 10s) ;;
		*) echo "unknown shape $shape" >&2; exit 2 ;;
		esac
		line=$("$bin/cluster" -env "$cluster_dir/env" -pids "$cluster_dir/pids" -api "http://$mock_addr" \
			-extra-pids "mock=$mock_pid" -label "$label shape=$shape" "${args[@]}" 2>"$work/drive.err") ||
			line="$line error=[$(tail -1 "$work/drive.err")]"
		echo "$line rev=$rev up_s=$up_s" | tee -a "$out"
	done
	# anything unusual the consumers or servers logged (warnings and errors,
	# but the expected ones of this set-up: no encryption key, private networks
	# allowed, plaintext passwords, and the nodes finding each other at start)
	local warn
	warn=$(cat "$cluster_dir"/logs/*.log | grep -iE '"level":"(warn|error)"|\[WRN\]|\[ERR\]|no heartbeat' |
		grep -vE 'ACTIONS_ENCRYPTION_KEY is not set|ACTIONS_ALLOW_PRIVATE_NETWORKS is on|Plaintext passwords' |
		grep -vE 'Error trying to connect to route|Healthcheck failed|Waiting for routing|not established contact with a meta leader' || true)
	if [[ -n $warn ]]; then
		echo "# $label: $(wc -l <<<"$warn") warning/error log lines; first ones:" | tee -a "$out"
		head -5 <<<"$warn" | cut -c1-300 | sed 's/^/#   /' | tee -a "$out"
	fi
	BASE_PORT=$base "$root/deploy/local-cluster.sh" down "$cluster_dir"
	cluster_dir=
}

for ((rep = 1; rep <= reps; rep++)); do
	for c in $consumers; do
		for r in $replicas; do
			one "$r" "$c" "$partitions"
		done
	done
done
