package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
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

// partitionLoad publishes triggers over many actions (so every partition
// gets some) to an API that counts the calls of each trigger.
type partitionLoad struct {
	t       *testing.T
	actions int
	url     string
	mu      sync.Mutex
	calls   map[string]int // by Idempotency-Key (the trigger id)
}

func newPartitionLoad(t *testing.T, actions int) *partitionLoad {
	l := &partitionLoad{t: t, actions: actions, calls: map[string]int{}}
	l.url = newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.calls[r.Header.Get("Idempotency-Key")]++
		l.mu.Unlock()
	}).URL
	return l
}

func (l *partitionLoad) id(i int) string { return fmt.Sprintf("P%d", i) }

// publish publishes triggers from..to-1 on the contract's subjects,
// retrying each until stored (a node may be down), and returns how many
// the stream reported as duplicates.
func (l *partitionLoad) publish(js jetstream.JetStream, from, to int) (duplicates int) {
	l.t.Helper()
	for i := from; i < to; i++ {
		action := fmt.Sprintf("act-%d", i%l.actions)
		tr := &events.Trigger{ID: l.id(i), ActionID: action, Source: events.SourceInbox, Request: events.Request{Method: "POST", URL: l.url}}
		data, _ := json.Marshal(tr)
		msg := &nats.Msg{Subject: events.NewSubjects("").Trigger(tr.Source, action), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, tr.ID)
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ack, err := js.PublishMsg(ctx, msg)
			cancel()
			if err == nil {
				if ack.Duplicate {
					duplicates++
				}
				break
			}
			if time.Now().After(deadline) {
				l.t.Fatalf("publish %s: %v", tr.ID, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return duplicates
}

// check waits for a result of each of the n triggers and asserts that
// none is missing or doubled; it returns how many triggers reached the
// API more than once and how many never did.
func (l *partitionLoad) check(js jetstream.JetStream, n int, timeout time.Duration) (twice, never int) {
	l.t.Helper()
	var results []events.Result
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if got, err := natstest.ReadAll[events.Result](js, events.DefaultResultStream, "actions.result.>"); err == nil {
			results = got
			if len(results) >= n {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, r := range results {
		seen[r.TriggerID]++
		if r.Status != events.StatusSucceeded {
			l.t.Errorf("trigger %s: %s %s", r.TriggerID, r.Status, r.Error)
		}
	}
	missing, dup := 0, 0
	for i := range n {
		switch seen[l.id(i)] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(results) != n {
		l.t.Errorf("%d results for %d triggers: %d missing, %d with more than one result", len(results), n, missing, dup)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range n {
		switch c := l.calls[l.id(i)]; {
		case c == 0:
			never++
		case c > 1:
			twice++
		}
	}
	return twice, never
}

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
			l := newPartitionLoad(t, 24)
			if d := l.publish(js, 0, n/2); d != 0 {
				t.Fatalf("%d first publishes reported as duplicates", d)
			}
			if stopNode {
				nodes[2].Shutdown()
				nodes[2].WaitForShutdown()
			}
			l.publish(js, n/2, n)
			// The producer publishes the first 100 again (a retry after a
			// lost ack): each meets its first copy in its partition.
			if d := l.publish(js, 0, 100); d != 100 {
				t.Errorf("%d of 100 re-published triggers caught as duplicates, want 100", d)
			}
			twice, never := l.check(js, n, 90*time.Second)
			if never > 0 {
				t.Errorf("%d triggers never reached the API", never)
			}
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
	l := newPartitionLoad(t, 4)
	l.publish(h.js, 0, 20)
	if twice, never := l.check(h.js, 20, 30*time.Second); twice+never > 0 {
		t.Errorf("%d executed twice, %d never", twice, never)
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
	l := newPartitionLoad(t, 8)
	l.publish(before.js, 0, 40)
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
	l.publish(after.js, 40, 60)
	if twice, never := l.check(after.js, 60, 30*time.Second); twice+never > 0 {
		t.Errorf("%d executed twice, %d never", twice, never)
	}
}
