package consumer

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"customactions/events"
)

func TestGracefulShutdownLosesNoTrigger(t *testing.T) {
	h := newHarness(t, Config{Workers: 8, ShutdownTimeout: 20 * time.Second})
	var calls atomic.Int64
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond) // calls are in flight when the signal comes
	})
	rep := h.start()
	const n = 40
	for i := range n {
		h.trigger(&events.Trigger{ID: fmt.Sprintf("g%d", i), ActionID: "act", Source: "inbox",
			Request: events.Request{Method: "POST", URL: api.URL}})
	}
	// Stop while calls are in flight.
	deadline := time.Now().Add(10 * time.Second)
	for rep.svc.InFlight() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if rep.svc.InFlight() == 0 {
		t.Fatal("no call in flight")
	}
	inFlight := rep.svc.InFlight()
	rep.stop(t)
	t.Logf("stopped with %d triggers in flight; %d done by the first replica", inFlight, rep.svc.Processed())
	// Whatever the first replica did not take is served by the next one.
	h.start()
	results := h.results(n, 30*time.Second)
	seen := map[string]int{}
	for _, r := range results {
		seen[r.TriggerID]++
		if r.Status != events.StatusSucceeded {
			t.Errorf("result %s: %s %+v", r.TriggerID, r.Status, r.Error)
		}
	}
	for i := range n {
		if seen[fmt.Sprintf("g%d", i)] != 1 {
			t.Errorf("trigger g%d has %d results, want 1", i, seen[fmt.Sprintf("g%d", i)])
		}
	}
	waitDrained(t, h)
	if got := calls.Load(); got != n {
		t.Errorf("API got %d calls, want %d: a graceful shutdown finishes what it started", got, n)
	}
}

func TestTwoReplicasSplitTheWork(t *testing.T) {
	h := newHarness(t, Config{Workers: 16})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(2 * time.Millisecond) })
	a, b := h.start(), h.start()
	const n = 400
	for i := range n {
		h.trigger(&events.Trigger{ID: fmt.Sprintf("s%d", i), ActionID: "act", Source: "bot",
			Request: events.Request{Method: "GET", URL: api.URL}})
	}
	h.results(n, 30*time.Second)
	waitDrained(t, h)
	results := h.results(n, 0)
	if len(results) != n {
		t.Fatalf("%d results, want %d", len(results), n)
	}
	seen := map[string]bool{}
	for _, r := range results {
		if seen[r.TriggerID] {
			t.Errorf("two results for %s", r.TriggerID)
		}
		seen[r.TriggerID] = true
	}
	if calls := len(api.Calls()); calls != n {
		t.Errorf("API got %d calls, want %d (each trigger executed once)", calls, n)
	}
	pa, pb := a.svc.Processed(), b.svc.Processed()
	t.Logf("replica A processed %d, replica B %d", pa, pb)
	if pa == 0 || pb == 0 || pa+pb != n {
		t.Errorf("work split %d/%d, want both replicas working and %d in all", pa, pb, n)
	}
}

// TestShutdownBoundHandsTriggersOver: a call still running when the
// shutdown bound ends is cancelled and its trigger goes to another replica
// at once, which finishes it; one result is stored.
func TestShutdownBoundHandsTriggersOver(t *testing.T) {
	h := newHarness(t, Config{Workers: 2, ShutdownTimeout: 500 * time.Millisecond})
	var slow atomic.Bool
	slow.Store(true)
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
		}
	})
	first := h.start()
	h.trigger(&events.Trigger{ID: "long", ActionID: "act", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL, TimeoutMS: 15000}})
	for first.svc.InFlight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	first.stop(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stop took %s with a 500ms bound", took)
	}
	slow.Store(false)
	h.start()
	if r := h.result("long", 10*time.Second); r.Status != events.StatusSucceeded {
		t.Errorf("result after hand-over: %+v %+v", r, r.Error)
	}
	waitDrained(t, h)
	if n := len(h.results(1, 0)); n != 1 {
		t.Errorf("%d results, want 1", n)
	}
}
