package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestLocalClusterPartitions runs deploy/local-cluster.sh with
// ACTIONS_PARTITIONS=3: three nats-server processes with R3 streams, the
// subject mapping in their accounts, two consumer processes. The producer
// publishes on the contract's subjects through its permissions; one node
// is killed (SIGKILL) half way. Every trigger gets one result, none is
// lost, none reaches the API twice, and the partition streams carried
// them all.
func TestLocalClusterPartitions(t *testing.T) {
	dir, env := upCluster(t, "ACTIONS_PARTITIONS=3", "ACTIONS_REPLICAS=3", "CONSUMERS=2")

	var mu sync.Mutex
	calls := map[string]int{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	t.Cleanup(api.Close)

	prodNC, _ := connectAs(t, env, "producer", env["ACTIONS_PRODUCER_PASSWORD"])
	prodJS, _ := jetstream.New(prodNC)
	const n, actions = 600, 30
	id := func(i int) string { return "pc-" + strconv.Itoa(i) }
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			action := fmt.Sprintf("part-%d", i%actions)
			data := fmt.Sprintf(`{"id":"%s","action_id":"%s","source":"bot","request":{"method":"POST","url":"%s/x"}}`, id(i), action, api.URL)
			deadline := time.Now().Add(60 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := prodJS.Publish(ctx, "actions.trigger.bot."+action, []byte(data), jetstream.WithMsgID(id(i)))
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("publish %s: %v", id(i), err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	publish(0, n/2)
	// Kill the third node (pids: the three servers, then the consumers).
	pids, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(pids))
	pid, _ := strconv.Atoi(lines[2])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill node 3: %v", err)
	}
	publish(n/2, n)

	// The results, as the subscriber reads them.
	subNC, _ := connectAs(t, env, "subscriber", env["ACTIONS_SUBSCRIBER_PASSWORD"])
	subJS, _ := jetstream.New(subNC)
	seen := map[string]int{}
	deadline := time.Now().Add(120 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		seen = map[string]int{}
		err := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := subJS.OrderedConsumer(ctx, "ACTIONS_RESULTS", jetstream.OrderedConsumerConfig{})
			if err != nil {
				return err
			}
			for {
				batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
				if err != nil {
					return err
				}
				got := 0
				for m := range batch.Messages() {
					got++
					var r struct {
						TriggerID string `json:"trigger_id"`
						Status    string `json:"status"`
					}
					_ = json.Unmarshal(m.Data(), &r)
					if r.Status != "succeeded" {
						t.Errorf("result %s", m.Data())
					}
					seen[r.TriggerID]++
				}
				if got == 0 {
					return batch.Error()
				}
			}
		}()
		if err != nil && len(seen) < n {
			time.Sleep(time.Second)
		}
	}
	missing, doubled, twice := 0, 0, 0
	mu.Lock()
	for i := range n {
		switch seen[id(i)] {
		case 0:
			missing++
		case 1:
		default:
			doubled++
		}
		if calls[id(i)] > 1 {
			twice++
		}
	}
	mu.Unlock()
	if missing > 0 || doubled > 0 {
		t.Errorf("%d triggers: %d without a result, %d with more than one", n, missing, doubled)
	}

	// The partition streams took the triggers, the one stream none.
	consNC, _ := connectAs(t, env, "consumer", env["ACTIONS_CONSUMER_PASSWORD"])
	consJS, _ := jetstream.New(consNC)
	last := func(name string) uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := consJS.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		return st.CachedInfo().State.LastSeq
	}
	var carried []uint64
	total := uint64(0)
	for k := range 3 {
		c := last("ACTIONS_TRIGGERS_P" + strconv.Itoa(k))
		if c == 0 {
			t.Errorf("partition %d took no trigger", k)
		}
		carried = append(carried, c)
		total += c
	}
	if base := last("ACTIONS_TRIGGERS"); base != 0 || total != n {
		t.Errorf("ACTIONS_TRIGGERS took %d, the partitions %v (%d); want 0 and %d", base, carried, total, n)
	}
	t.Logf("%d triggers over partitions %v with node 3 killed half way: each with one result; %d reached the API twice (at-least-once after the kill)", n, carried, twice)
}
