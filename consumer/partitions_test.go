package consumer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"customactions/events"
	"customactions/internal/natstest"
)

// streamsCarried returns the last sequence of the trigger stream and of
// each partition stream: how many triggers each took.
func streamsCarried(t *testing.T, js jetstream.JetStream, cfg Config) (base uint64, parts []uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last := func(name string, replicas int) uint64 {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != replicas {
			t.Errorf("stream %s has %d replicas, want %d", name, info.Config.Replicas, replicas)
		}
		return info.State.LastSeq
	}
	base = last(cfg.TriggerStream, cfg.Replicas)
	for k := range cfg.Partitions {
		parts = append(parts, last(cfg.PartitionStream(k), cfg.Replicas))
	}
	return base, parts
}

// addPartitionMapping gives every node the mapping of n partitions.
func addPartitionMapping(t *testing.T, n int, nodes ...*server.Server) {
	t.Helper()
	from, to := events.NewSubjects("").PartitionMapping(n)
	for _, s := range nodes {
		if err := s.GlobalAccount().AddMapping(from, to); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPartitionsOnCluster: on a 3-node cluster with R3 streams, triggers
// published on the contract's subjects are spread over 3 partition
// streams by the server's mapping and executed by 3 replicas (one per
// node): every trigger is executed once with one result, a trigger
// published twice is caught by its partition's duplicate window, and with
// a node stopped under load nothing is lost.
func TestPartitionsOnCluster(t *testing.T) {
	for _, stopNode := range []bool{false, true} {
		name := map[bool]string{false: "steady", true: "node stopped under load"}[stopNode]
		t.Run(name, func(t *testing.T) {
			const parts, n = 3, 900
			nodes := natstest.StartCluster(t, 3)
			addPartitionMapping(t, parts, nodes...)
			nc, js := natstest.ConnectURL(t, nodes[0].ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
			cfg := Config{Replicas: 3, Partitions: parts, Workers: 16, AckWait: 5 * time.Second}.WithDefaults()
			res := setupRetry(t, js, cfg)
			if len(res.Partitions) != parts {
				t.Fatalf("%d partition consumers, want %d", len(res.Partitions), parts)
			}
			h := &harness{t: t, srv: &natstest.Server{Server: nodes[0]}, nc: nc, js: js, res: res, cfg: cfg, subj: events.NewSubjects(""), logs: &syncBuffer{}}
			for _, node := range nodes {
				h.urls = node.ClientURL()
				h.start()
			}
			l := newLoadRun(t, 0)
			l.actions = 24
			if d := l.publishAll(js, 0, n/2); d != 0 {
				t.Fatalf("%d first publishes reported as duplicates", d)
			}
			if stopNode {
				nodes[2].Shutdown()
				nodes[2].WaitForShutdown()
			}
			l.publishAll(js, n/2, n)
			// The producer publishes the first 100 again (a retry after a
			// lost ack): each meets its first copy in its partition.
			if d := l.publishAll(js, 0, 100); d != 100 {
				t.Errorf("%d of 100 re-published triggers caught as duplicates, want 100", d)
			}
			twice := l.check(js, n, 90*time.Second)
			if !stopNode && twice > 0 {
				t.Errorf("%d triggers reached the API twice with no fault", twice)
			}
			base, carried := streamsCarried(t, js, cfg)
			if base != 0 {
				t.Errorf("the unpartitioned stream took %d triggers, want 0 (all mapped)", base)
			}
			total := uint64(0)
			for k, c := range carried {
				if c == 0 {
					t.Errorf("partition %d took no trigger", k)
				}
				total += c
			}
			if total != n {
				t.Errorf("the partitions took %d triggers, want %d", total, n)
			}
			t.Logf("%d triggers over %d partitions %v, each with one result; %d executed twice (at-least-once after a node stop)", n, parts, carried, twice)
		})
	}
}

// TestPartitionsWithoutMapping: partitions are set but the server has no
// mapping; the triggers land in the unpartitioned stream, are executed all
// the same, and the log says what is missing.
func TestPartitionsWithoutMapping(t *testing.T) {
	h := newHarness(t, Config{Partitions: 2})
	h.start()
	l := newLoadRun(t, 0)
	l.actions = 4
	l.publishAll(h.js, 0, 20)
	if twice := l.check(h.js, 20, 30*time.Second); twice > 0 {
		t.Errorf("%d executed twice", twice)
	}
	if base, parts := streamsCarried(t, h.js, h.cfg); base != 20 || parts[0]+parts[1] != 0 {
		t.Errorf("trigger stream took %d, partitions %v; want 20 and none", base, parts)
	}
	if !strings.Contains(h.logs.String(), "add the partition mapping") {
		t.Errorf("no warning about the missing mapping in the log:\n%s", h.logs.String())
	}
}

// TestPartitionsTurnedOffLoseNothing: triggers wait in 4 partitions while
// no replica runs; then partitions are turned off (mapping removed,
// setting 0) and a replica still executes what waits in the partition
// streams, and the new triggers from the one stream.
func TestPartitionsTurnedOffLoseNothing(t *testing.T) {
	srv := natstest.Start(t)
	addPartitionMapping(t, 4, srv.Server)
	before := newHarnessOn(t, srv, Config{Partitions: 4})
	l := newLoadRun(t, 0)
	l.actions = 8
	l.publishAll(before.js, 0, 40)
	_, parts := streamsCarried(t, before.js, before.cfg)
	for k, c := range parts {
		if c == 0 {
			t.Fatalf("partition %d took no trigger: %v", k, parts)
		}
	}
	from, _ := events.NewSubjects("").PartitionMapping(4)
	srv.GlobalAccount().RemoveMapping(from)
	after := newHarnessOn(t, srv, Config{})
	if len(after.res.Partitions) != 4 {
		t.Fatalf("with partitions off, %d partition streams attached, want the 4 that exist", len(after.res.Partitions))
	}
	// The backlog metric counts what waits in every partition.
	svc, err := New(after.js, after.res, after.cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(svc.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP actions_consumer_pending Triggers in the stream (and its partitions) not yet delivered to any replica.
# TYPE actions_consumer_pending gauge
actions_consumer_pending 40
`), "actions_consumer_pending"); err != nil {
		t.Error(err)
	}
	after.start()
	l.publishAll(after.js, 40, 60)
	if twice := l.check(after.js, 60, 30*time.Second); twice > 0 {
		t.Errorf("%d executed twice", twice)
	}
}
