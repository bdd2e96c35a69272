"""jszwatch.py — once a second, the trigger consumers' state as the servers
of deploy/local-cluster.sh report it (/jsz on the monitoring ports): ack
pending, redelivered, waiting pull requests, messages not yet delivered,
delivered and ack floor sequences, the leader. A stall with "wait 0" and
"pend" > 0 is a consumer with triggers to deliver and no pull request.

    python3 perf/cluster/jszwatch.py [MONITOR_BASE_PORT] >> /tmp/perf/jsz.log   (default 26235)
"""
import json
import sys
import time
import urllib.request

base = int(sys.argv[1]) if len(sys.argv) > 1 else 26235
while True:
    for p in (base, base + 1, base + 2):
        try:
            url = f"http://127.0.0.1:{p}/jsz?accounts=true&consumers=true"
            j = json.load(urllib.request.urlopen(url, timeout=1))
        except Exception:
            continue
        for a in j.get("account_details", []):
            for s in a.get("stream_detail", []):
                for c in s.get("consumer_detail", []) or []:
                    if "TRIGGER" in s["name"]:
                        print(time.strftime("%H:%M:%S"), p, s["name"],
                              "ackp", c["num_ack_pending"], "redel", c["num_redelivered"],
                              "wait", c["num_waiting"], "pend", c["num_pending"],
                              "dseq", c["delivered"]["consumer_seq"], "afloor", c["ack_floor"]["consumer_seq"],
                              "leader", c.get("cluster", {}).get("leader"), flush=True)
    time.sleep(1)
