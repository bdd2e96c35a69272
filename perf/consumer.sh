#!/usr/bin/env bash
# The consumer as a pipeline for ../shared/perf/bench.sh: it reads NATS_URL,
# API_URL and C from the environment and runs in the foreground until
# SIGTERM. CONSUMER is the binary (go build -o "$CONSUMER" ./cmd/consumer).
# C=auto leaves ACTIONS_WORKERS and ACTIONS_ACTION_CONCURRENCY empty, for
# ACTIONS_EXPECTED_RATE and ACTIONS_EXPECTED_LATENCY (in EXTRA_ENV) to size.
here=$(cd "$(dirname "$0")" && pwd)
sizing=(ACTIONS_WORKERS="$C" ACTIONS_ACTION_CONCURRENCY="$C")
[[ $C == auto ]] && sizing=()
exec env "${sizing[@]}" ACTIONS_ALLOW_PRIVATE_NETWORKS=true ACTIONS_LOG_LEVEL=warn \
	ACTIONS_TOKENS_FILE="${TOKENS_FILE:-$here/bench-token.json}" ${EXTRA_ENV:-} \
	"${CONSUMER:?set CONSUMER to the consumer binary}" run
