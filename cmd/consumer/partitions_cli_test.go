package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestEmbeddedPartitions: with ACTIONS_PARTITIONS on the embedded server,
// triggers sent as a producer sends them (on the contract's subjects)
// are executed, and they went through the partition streams, none through
// the one trigger stream: the embedded server got the mapping.
func TestEmbeddedPartitions(t *testing.T) {
	t.Parallel()
	env := newEnv("ACTIONS_PARTITIONS", "3")
	startService(t, env)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(api.Close)
	const n = 8
	for i := range n {
		out, errOut, err := cli(t, env, "trigger", "-action", fmt.Sprintf("part-%d", i), "-url", api.URL)
		if err != nil || !strings.Contains(out, `"status": "succeeded"`) {
			t.Fatalf("trigger %d: %q %q %v", i, out, errOut, err)
		}
	}
	nc, err := nats.Connect(env.getenv("NATS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last := func(name string) uint64 {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		return s.CachedInfo().State.LastSeq
	}
	var carried []uint64
	var total uint64
	for k := range 3 {
		c := last(fmt.Sprintf("ACTIONS_TRIGGERS_P%d", k))
		carried = append(carried, c)
		total += c
	}
	if base := last("ACTIONS_TRIGGERS"); base != 0 || total != n {
		t.Errorf("ACTIONS_TRIGGERS took %d triggers and the partitions %v; want 0 and %d in all", base, carried, n)
	}
}
