#!/usr/bin/env bash
# local-cluster.sh — a 3-node NATS JetStream cluster and two consumer
# replicas on 127.0.0.1, with the accounts and permissions of
# deploy/nats/accounts.conf. Needs only Go (it builds nats-server and the
# consumer from this module).
#
#   deploy/local-cluster.sh up   [DIR]   start everything, print how to use it
#   deploy/local-cluster.sh down [DIR]   stop everything started in DIR
#
# DIR (default /tmp/actions-cluster) holds binaries, configs, stores, logs,
# pids and env (sourceable: NATS_URL, the users' passwords, the replicas'
# metrics addresses). BASE_PORT (default 24222) is the first client port:
# clients BASE..BASE+2, cluster routes BASE+1000.., monitoring BASE+2000..,
# consumer metrics BASE+3000, BASE+3001, ... (one per replica).
#
# Knobs (environment, for load runs such as perf/cluster/run.sh):
#   CONSUMERS=2           consumer replicas, 0 to 3 (ACTIONS_METRICS_1.. in env)
#   ACTIONS_REPLICAS=3    replicas of the streams and buckets; 1 gives R1 on the same 3 nodes
#   ACTIONS_PARTITIONS=N  N > 1: the consumers get it, and the copy of accounts.conf in DIR
#                         maps actions.trigger.*.* onto N partitions by action id
#   SKIP_BUILD=1          use the binaries already in DIR/bin (nats-server, consumer)
# Any other ACTIONS_* setting in the environment reaches the consumers as well.
set -euo pipefail
cmd=${1:-}
dir=${2:-/tmp/actions-cluster}
base=${BASE_PORT:-24222}
consumers=${CONSUMERS:-2}
replicas=${ACTIONS_REPLICAS:-3}
partitions=${ACTIONS_PARTITIONS:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
[[ $consumers =~ ^[0-3]$ ]] || { echo "CONSUMERS=$consumers: want 0 to 3" >&2; exit 2; }
[[ $partitions =~ ^[0-9]+$ ]] || { echo "ACTIONS_PARTITIONS=$partitions: want a number" >&2; exit 2; }

down() {
	[[ -f $dir/pids ]] || return 0
	# consumers first (graceful), then the servers
	tac "$dir/pids" | while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done
	for _ in $(seq 100); do
		alive=0
		while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$dir/pids"
		[[ $alive = 0 ]] && break
		sleep 0.1
	done
	while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$dir/pids"
	rm -f "$dir/pids"
}

wait_http() { # URL, what
	for _ in $(seq 300); do
		curl -fsS "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "timed out waiting for $2 ($1)" >&2
	return 1
}

up() {
	down
	mkdir -p "$dir/bin" "$dir/logs"
	if [[ ${SKIP_BUILD:-} != 1 || ! -x $dir/bin/nats-server || ! -x $dir/bin/consumer ]]; then
		(cd "$root" && go build -o "$dir/bin/nats-server" github.com/nats-io/nats-server/v2 && go build -o "$dir/bin/consumer" ./cmd/consumer)
	fi
	pw() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
	cat >"$dir/env" <<ENV
export ACTIONS_CONSUMER_PASSWORD=$(pw)
export ACTIONS_PRODUCER_PASSWORD=$(pw)
export ACTIONS_SUBSCRIBER_PASSWORD=$(pw)
export ACTIONS_OPS_PASSWORD=$(pw)
export ACTIONS_ADMIN_PASSWORD=$(pw)
export ACTIONS_SYS_PASSWORD=$(pw)
export NATS_URL=nats://127.0.0.1:$base,nats://127.0.0.1:$((base + 1)),nats://127.0.0.1:$((base + 2))
ENV
	for ((i = 1; i <= consumers; i++)); do
		echo "export ACTIONS_METRICS_$i=127.0.0.1:$((base + 2999 + i))" >>"$dir/env"
	done
	# shellcheck disable=SC1091
	source "$dir/env"
	if ((partitions > 1)); then
		# the marker line of accounts.conf becomes the account's subject mapping
		mapping="mappings: { \"actions.trigger.*.*\": \"actions.partition.{{partition($partitions,2)}}.trigger.{{wildcard(1)}}.{{wildcard(2)}}\" }"
		grep -q '^ *# @PARTITION_MAPPING@' "$root/deploy/nats/accounts.conf" ||
			{ echo "deploy/nats/accounts.conf has no # @PARTITION_MAPPING@ line" >&2; exit 1; }
		sed "s|^\( *\)# @PARTITION_MAPPING@.*|\1$mapping|" "$root/deploy/nats/accounts.conf" >"$dir/accounts.conf"
	else
		cp "$root/deploy/nats/accounts.conf" "$dir/accounts.conf"
	fi
	routes=""
	for i in 0 1 2; do routes="$routes nats://127.0.0.1:$((base + 1000 + i))"; done
	routes=$(echo "$routes" | sed 's/^ //; s/ /, /g')
	: >"$dir/pids"
	for i in 0 1 2; do
		sed -e "s|@NAME@|n$((i + 1))|" -e "s|@HOST@|127.0.0.1|g" -e "s|@CLIENT_PORT@|$((base + i))|" \
			-e "s|@HTTP_PORT@|$((base + 2000 + i))|" -e "s|@CLUSTER_PORT@|$((base + 1000 + i))|" \
			-e "s|@STORE_DIR@|$dir/store/n$((i + 1))|" -e "s|@ROUTES@|$routes|" \
			"$root/deploy/nats/node.conf.template" >"$dir/n$((i + 1)).conf"
		"$dir/bin/nats-server" -c "$dir/n$((i + 1)).conf" >"$dir/logs/n$((i + 1)).log" 2>&1 &
		echo $! >>"$dir/pids"
	done
	for i in 0 1 2; do wait_http "http://127.0.0.1:$((base + 2000 + i))/healthz" "node n$((i + 1))"; done
	part_env=()
	((partitions > 1)) && part_env=(ACTIONS_PARTITIONS="$partitions")
	for ((i = 1; i <= consumers; i++)); do
		addr_var=ACTIONS_METRICS_$i
		env NATS_USER=consumer NATS_PASSWORD="$ACTIONS_CONSUMER_PASSWORD" ACTIONS_REPLICAS="$replicas" "${part_env[@]}" \
			ACTIONS_HTTP_ADDR="${!addr_var}" ACTIONS_ALLOW_PRIVATE_NETWORKS="${ACTIONS_ALLOW_PRIVATE_NETWORKS:-true}" \
			"$dir/bin/consumer" run >"$dir/logs/consumer$i.log" 2>&1 &
		echo $! >>"$dir/pids"
	done
	for ((i = 1; i <= consumers; i++)); do
		addr_var=ACTIONS_METRICS_$i
		wait_http "http://${!addr_var}/readyz" "consumer replica $i"
	done
	what="R$replicas"
	((partitions > 1)) && what="$what, $partitions partitions"
	cat <<MSG
3 NATS nodes and $consumers consumer replicas ($what) are up (logs in $dir/logs).
  source $dir/env
  NATS_USER=producer NATS_PASSWORD=\$ACTIONS_PRODUCER_PASSWORD $dir/bin/consumer trigger -action demo -url http://127.0.0.1:PORT/your-api -wait 0
  NATS_USER=admin NATS_PASSWORD=\$ACTIONS_ADMIN_PASSWORD $dir/bin/consumer tokens list
  NATS_USER=ops NATS_PASSWORD=\$ACTIONS_OPS_PASSWORD $dir/bin/consumer logs -f
  curl http://\$ACTIONS_METRICS_1/metrics
  $0 down $dir
MSG
}

case $cmd in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down [DIR]" >&2; exit 2 ;;
esac
