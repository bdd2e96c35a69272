#!/usr/bin/env bash
# capacity.sh — one capacity run (CAPACITY.md): a fresh nats-server of the
# shared load harness, the capacity mock API (per-trigger latency), the
# consumer (perf/consumer.sh, C=WORKERS) and the capacity drive at a fixed
# offered rate. Prints one row: the drive's line, then the consumer's CPU
# per trigger, nats-server's and the mock API's, the consumer's RSS idle
# (before the drive) and peak (VmHWM), and KB per call in flight.
#   perf/capacity.sh [-name N] [-pipeline consumer|floor] [-workers W] [-rate R] [-duration 20s] [-dist tail] [-out FILE] [-n N] [-api http|https1|https2]
# -api https2 serves the mock API over TLS with HTTP/2 (https1: TLS, HTTP/1.1
# only); the consumer trusts its certificate through SSL_CERT_FILE.
# MOCK_ARGS (e.g. "-close-every 1") go to the mock API.
# -pipeline floor runs the shared harness's floor with -concurrency W
# (pull batch and max_ack_pending W + 256) in place of the consumer.
# EXTRA_ENV (e.g. "ACTIONS_MAX_ACK_PENDING=4096") goes to the consumer.
# PERF (the shared harness binary), CONSUMER and CAPACITY (go build -o ...
# ./perf/capacity) must be set; perf/capacity-all.sh builds them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=consumer pipeline=consumer workers=1024 rate=4000 duration=20s dist=tail out=/tmp/perf/capacity.txt n=20000 api=http
while [[ $# -gt 0 ]]; do
	case $1 in
	-name) name=$2; shift 2 ;;
	-pipeline) pipeline=$2; shift 2 ;;
	-workers) workers=$2; shift 2 ;;
	-rate) rate=$2; shift 2 ;;
	-duration) duration=$2; shift 2 ;;
	-dist) dist=$2; shift 2 ;;
	-out) out=$2; shift 2 ;;
	-n) n=$2; shift 2 ;;
	-api)
		api=$2; shift 2
		[[ $api =~ ^(http|https1|https2)$ ]] || { echo "-api $api: want http, https1 or https2" >&2; exit 2; }
		;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
: "${PERF:?set PERF to the shared harness binary}" "${CAPACITY:?}"
[[ $pipeline == floor ]] || : "${CONSUMER:?set CONSUMER to the consumer binary}"
mkdir -p /tmp/perf "$(dirname "$out")"
work=$(mktemp -d /tmp/perf/cap.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	cp "$work/consumer.log" /tmp/perf/last-pipeline.log 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

"$PERF" nats -port 14222 -store "$work/store" >"$work/nats.log" 2>&1 &
npid=$!; pids+=($npid)
mockargs=() scheme=http
case $api in
http) ;;
https1) mockargs=(-tls "$work/api-cert.pem" -http1) scheme=https ;;
https2) mockargs=(-tls "$work/api-cert.pem") scheme=https ;;
esac
"$CAPACITY" mockapi -addr 127.0.0.1:18080 "${mockargs[@]}" ${MOCK_ARGS:-} >"$work/mock.log" 2>&1 &
mpid=$!; pids+=($mpid)
for _ in $(seq 50); do
	grep -q nats:// "$work/nats.log" && grep -q "$scheme://" "$work/mock.log" && break
	sleep 0.1
done
[[ $scheme == https ]] && export SSL_CERT_FILE=$work/api-cert.pem
"$PERF" drive -nats nats://127.0.0.1:14222 -n 0 -create-streams=true >/dev/null
if [[ $pipeline == floor ]]; then
	"$PERF" floor -nats nats://127.0.0.1:14222 -concurrency "$workers" >"$work/consumer.log" 2>&1 &
else
	C=$workers NATS_URL=nats://127.0.0.1:14222 "$here/consumer.sh" >"$work/consumer.log" 2>&1 &
fi
cpid=$!; pids+=($cpid)
"$CAPACITY" drive -nats nats://127.0.0.1:14222 -rate 0 -n 0 -wait-consumer 60s >/dev/null 2>&1 || true
sleep 1
idle_kb=$(status_kb $cpid VmRSS)
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }
read -r b0 i0 < <(busy)
p0=$(cpu_ticks $cpid); n0=$(cpu_ticks $npid); m0=$(cpu_ticks $mpid)
args=(-rate "$rate" -duration "$duration" -dist "$dist" -api "$scheme://127.0.0.1:18080")
[[ $rate == 0 ]] && args=(-rate 0 -n "$n" -dist "$dist" -api "$scheme://127.0.0.1:18080")
line=$("$CAPACITY" drive -nats nats://127.0.0.1:14222 "${args[@]}" 2>"$work/drive.err") || line="$line $(tail -1 "$work/drive.err")"
p1=$(cpu_ticks $cpid); n1=$(cpu_ticks $npid); m1=$(cpu_ticks $mpid)
read -r b1 i1 < <(busy)
peak_kb=$(status_kb $cpid VmHWM)
threads=$(status_kb $cpid Threads)
stats=$(curl -sk "$scheme://127.0.0.1:18080/stats")
kill -TERM $cpid; wait $cpid 2>/dev/null || true
results=$(sed -E 's/.*results=([0-9]+).*/\1/' <<<"$line")
inflight=$(sed -E 's/.*inflight_peak=([0-9]+).*/\1/' <<<"$line")
[[ $results =~ ^[0-9]+$ ]] || results=0
[[ $inflight =~ ^[0-9]+$ ]] || inflight=0
row=$(awk -v p=$((p1 - p0)) -v nt=$((n1 - n0)) -v mt=$((m1 - m0)) -v hz="$hz" -v got="$results" -v idle="$idle_kb" -v peak="$peak_kb" -v inf="$inflight" -v busy=$((b1 - b0)) -v idle_t=$((i1 - i0)) '
	BEGIN { printf "cpu_us_per_msg=%.0f nats_us_per_msg=%.0f mock_us_per_msg=%.0f rss_idle_mb=%.1f rss_peak_mb=%.1f kb_per_inflight=%.1f machine_busy_pct=%.0f",
		(got > 0 ? 1e6 * p / hz / got : 0), (got > 0 ? 1e6 * nt / hz / got : 0), (got > 0 ? 1e6 * mt / hz / got : 0),
		idle / 1024, peak / 1024, (inf > 0 ? (peak - idle) / inf : 0), 100 * busy / (busy + idle_t) }')
echo "name=$name workers=$workers dist=$dist proto=$api mock=[${MOCK_ARGS:-}] extra=[${EXTRA_ENV:-}] $line $row threads=$threads api=$stats" | tee -a "$out"
