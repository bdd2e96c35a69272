#!/usr/bin/env bash
# source-ab.sh — A/B of the consumer's trigger source on the local 3-node
# cluster (PERFORMANCE.md, "2026-11-26: pulling with Consume (A/B)"): the
# consumer built at BEFORE (default 9e5e8f0, the Messages iterator) and at
# AFTER (default HEAD, Consume) take turns run by run, in shape (a) of
# run.sh (closed loop, 512 outstanding, 40 000 triggers, API 0 ms), for each
# replica count, while HOG busy loops (sh 'while :; do :; done', nice 0)
# compete for the cores from just before the warm-up to the end of the run.
# Per run: the line of perf/cluster plus the counts of the consumer log's
# "no heartbeat", "slow consumer" and "NATS error" lines and of all its
# warnings.
#
#   perf/cluster/source-ab.sh [-out FILE] [-reps 4] [-replicas "1 3"] [-consumers 1]
#                             [-hog 2] [-n 40000] [-inflight 512] [-before REV] [-after REV]
#                             [-before-bin FILE] [-after-bin FILE] [-names "before after"]
#
# -before-bin / -after-bin: use that consumer binary instead of building the
# revision (e.g. a patched build); -names: the variant labels printed.
# While it runs, perf/cluster/jszwatch.py can sample the trigger consumer's
# state on the servers once a second (waiting pull requests, ack pending).
#
# nats-server, the mock API and both consumers are built from git archive
# of the revisions (nats-server and the mock API from AFTER); the drive
# from the working tree. The order of before/after flips every repetition.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=/tmp/perf/source-ab.txt reps=4 replicas="1 3" consumers=1 hog=2 n=40000 inflight=512
before=9e5e8f0 after=HEAD before_bin= after_bin= names="before after"
while [[ $# -gt 0 ]]; do
	case $1 in
	-out) out=$2; shift 2 ;;
	-reps) reps=$2; shift 2 ;;
	-replicas) replicas=$2; shift 2 ;;
	-consumers) consumers=$2; shift 2 ;;
	-hog) hog=$2; shift 2 ;;
	-n) n=$2; shift 2 ;;
	-inflight) inflight=$2; shift 2 ;;
	-before) before=$2; shift 2 ;;
	-after) after=$2; shift 2 ;;
	-before-bin) before_bin=$2; shift 2 ;;
	-after-bin) after_bin=$2; shift 2 ;;
	-names) names=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
work=/tmp/perf/source-ab-work
bin=$work/bin
base=${BASE_PORT:-24235}
mock_addr=127.0.0.1:${MOCK_PORT:-18180}
mkdir -p "$bin" "$(dirname "$out")"

build() { # rev, what to build ("all" or "consumer"), suffix
	local rev=$1 src=$work/src-$3
	rm -rf "$src" && mkdir -p "$src"
	git -C "$root" archive "$rev" | tar -x -C "$src"
	(cd "$src" && go build -o "$bin/consumer-$3" ./cmd/consumer)
	if [[ $2 == all ]]; then
		(cd "$src" && go build -o "$bin/nats-server" github.com/nats-io/nats-server/v2 && go build -o "$bin/capacity" ./perf/capacity)
	fi
}
rev_before=$(git -C "$root" rev-parse --short "$before")
rev_after=$(git -C "$root" rev-parse --short "$after")
build "$before" consumer before
build "$after" all after
[[ -n $before_bin ]] && cp "$before_bin" "$bin/consumer-before" && rev_before="$rev_before+bin"
[[ -n $after_bin ]] && cp "$after_bin" "$bin/consumer-after" && rev_after="$rev_after+bin"
read -r name_before name_after <<<"$names"
(cd "$root" && go build -o "$bin/cluster" ./perf/cluster)
echo "# $(date -u +%FT%TZ) source A/B $name_before=$rev_before $name_after=$rev_after nats-server $("$bin/nats-server" --version) reps=$reps replicas=[$replicas] consumers=$consumers hog=$hog n=$n inflight=$inflight nproc=$(nproc)" | tee -a "$out"

mock_pid=
cluster_dir=
hog_pids=()
stop_hog() {
	local p
	for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${hog_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	hog_pids=()
}
cleanup() {
	stop_hog
	[[ -n $cluster_dir ]] && BASE_PORT=$base "$root/deploy/local-cluster.sh" down "$cluster_dir" || true
	[[ -n $mock_pid ]] && kill "$mock_pid" 2>/dev/null || true
}
trap cleanup EXIT
"$bin/capacity" mockapi -addr "$mock_addr" >"$work/mock.log" 2>&1 &
mock_pid=$!

one() { # replicas, consumers, variant (before|after)
	local r=$1 c=$2 v=$3 rev label
	[[ $v == before ]] && rev=$rev_before || rev=$rev_after
	cluster_dir=$work/run
	rm -rf "$cluster_dir" && mkdir -p "$cluster_dir/bin"
	cp "$bin/nats-server" "$cluster_dir/bin/"
	cp "$bin/consumer-$v" "$cluster_dir/bin/consumer"
	local name=$name_before
	[[ $v == after ]] && name=$name_after
	label="config=R$r/c$c variant=$name hog=$hog"
	if ! SKIP_BUILD=1 BASE_PORT=$base CONSUMERS=$c ACTIONS_REPLICAS=$r \
		ACTIONS_TOKENS_FILE="$root/perf/bench-token.json" ACTIONS_LOG_LEVEL=warn \
		"$root/deploy/local-cluster.sh" up "$cluster_dir" >"$work/up.log" 2>&1; then
		echo "$label rev=$rev up failed: $(tail -3 "$work/up.log" | tr '\n' ' ')" | tee -a "$out"
		return 0
	fi
	local i
	for ((i = 0; i < hog; i++)); do
		nice -n 0 timeout 300 sh -c 'while :; do :; done' &
		hog_pids+=($!)
	done
	local line
	line=$("$bin/cluster" -env "$cluster_dir/env" -pids "$cluster_dir/pids" -api "http://$mock_addr" \
		-extra-pids "mock=$mock_pid" -label "$label shape=a" \
		-inflight "$inflight" -n "$n" -warmup 2000 -latency-ms 0 2>"$work/drive.err") ||
		line="$line error=[$(tail -1 "$work/drive.err")]"
	stop_hog
	local logs=("$cluster_dir"/logs/consumer*.log) nohb slow natserr warns
	nohb=$(cat "${logs[@]}" | grep -ci 'no heartbeat' || true)
	slow=$(cat "${logs[@]}" | grep -ci 'slow consumer' || true)
	natserr=$(cat "${logs[@]}" | grep -c '"NATS error"' || true)
	warns=$(cat "${logs[@]}" | grep -E '"level":"(WARN|ERROR)"' |
		grep -vcE 'ACTIONS_ENCRYPTION_KEY is not set|ACTIONS_ALLOW_PRIVATE_NETWORKS is on' || true)
	echo "$line no_heartbeat=$nohb slow_consumer=$slow nats_error=$natserr consumer_warnings=$warns rev=$rev" | tee -a "$out"
	if ((warns > 0)); then
		cat "${logs[@]}" | grep -E '"level":"(WARN|ERROR)"' |
			grep -vE 'ACTIONS_ENCRYPTION_KEY is not set|ACTIONS_ALLOW_PRIVATE_NETWORKS is on' |
			head -4 | cut -c1-300 | sed 's/^/#   /' | tee -a "$out"
	fi
	BASE_PORT=$base "$root/deploy/local-cluster.sh" down "$cluster_dir" >/dev/null
	cluster_dir=
}

for ((rep = 1; rep <= reps; rep++)); do
	order="before after"
	((rep % 2 == 0)) && order="after before"
	for r in $replicas; do
		for v in $order; do
			one "$r" "$consumers" "$v"
		done
	done
done
