package consumer

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"customactions/breaker"
	"customactions/events"
)

// TestBulkheadKeepsOtherActionsMoving: an action at its bound of
// concurrent calls holds no more workers; its further triggers wait
// parked (not redelivered, not dead-lettered) while another action's
// trigger goes straight through.
func TestBulkheadKeepsOtherActionsMoving(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 4, ActionConcurrency: 1, MaxDeliver: 2, AckWait: 3 * time.Second})
	var inSlow, maxSlow, slowCalls atomic.Int64
	release := make(chan struct{})
	slow := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		slowCalls.Add(1)
		n := inSlow.Add(1)
		defer inSlow.Add(-1)
		for {
			m := maxSlow.Load()
			if n <= m || maxSlow.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
	})
	fast := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	h.start()
	const n = 6
	for i := range n {
		h.trigger(&events.Trigger{ID: "slow" + strconv.Itoa(i), ActionID: "slow", Source: "bot",
			Request: events.Request{Method: "GET", URL: slow.URL, TimeoutMS: 20000}})
	}
	deadline := time.Now().Add(5 * time.Second)
	for slowCalls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// One slow call holds the action's only slot; the rest are parked.
	// Another action is served by a free worker at once.
	h.trigger(&events.Trigger{ID: "fast", ActionID: "fast", Source: "bot", Request: events.Request{Method: "GET", URL: fast.URL}})
	r := h.result("fast", 5*time.Second)
	if r.Status != events.StatusSucceeded {
		t.Fatalf("fast action: %s", r.Status)
	}
	if got := len(h.results(0, 0)); got != 1 {
		t.Errorf("%d results before the slow API answered, want only the fast one", got)
	}
	// Parked past AckWait: kept alive, not redelivered, so not dead-lettered.
	time.Sleep(4 * time.Second)
	close(release)
	res := h.results(n+1, 30*time.Second)
	waitDrained(t, h)
	if len(res) != n+1 || slowCalls.Load() != n {
		t.Errorf("%d results, %d slow calls; want %d and %d", len(res), slowCalls.Load(), n+1, n)
	}
	for _, r := range res {
		if r.Status != events.StatusSucceeded {
			t.Errorf("%s: %s %+v", r.TriggerID, r.Status, r.Error)
		}
	}
	if maxSlow.Load() != 1 {
		t.Errorf("the slow action had %d calls at once, want its bound of 1", maxSlow.Load())
	}
	info, _ := h.res.Triggers.Info(t.Context())
	if info.NumRedelivered != 0 {
		t.Errorf("%d triggers redelivered while parked", info.NumRedelivered)
	}
}

// TestSlowCallsOpenTheBreakerWhileInFlight: calls of a hanging API count
// against its breaker as soon as they pass the slow-call threshold, so the
// breaker opens while they are still in flight, and the action's next
// triggers are answered breaker_open without a call.
func TestSlowCallsOpenTheBreakerWhileInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 8, ActionConcurrency: 4, SlowCall: 300 * time.Millisecond})
	var calls atomic.Int64
	hang := make(chan struct{})
	defer close(hang) // before the replica stops: it waits for its calls
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	_, br := h.startWithBreaker(breaker.Settings{Consecutive: 3, Cooldown: time.Minute}, time.Now)
	for i := range 10 {
		h.trigger(&events.Trigger{ID: "hung" + strconv.Itoa(i), ActionID: "hung", Source: "bot",
			Request: events.Request{Method: "GET", URL: api.URL, TimeoutMS: 30000}})
	}
	deadline := time.Now().Add(10 * time.Second)
	for br.Get("hung").State != breaker.Open && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := br.Get("hung").State; st != breaker.Open {
		t.Fatalf("breaker %s after the calls passed the slow-call threshold, want open", st)
	}
	if got := len(h.results(0, 0)); got > 6 {
		t.Errorf("%d results already: the breaker should open while the first calls are in flight", got)
	}
	// The 4 calls in flight hold the slots; the 6 parked triggers are
	// answered breaker_open without a call once the breaker is open.
	res := h.results(6, 20*time.Second)
	open := 0
	for _, r := range res {
		if r.Status == events.StatusBreakerOpen {
			open++
		}
	}
	if open != 6 || calls.Load() != 4 {
		t.Errorf("%d breaker_open results, %d calls; want 6 and only the 4 in flight", open, calls.Load())
	}
}

// TestAdminLimitsHoldTheFleetToARate: with a limit of 20 calls/s set by
// an admin, two replicas make at most that many calls in any second, and
// every trigger still succeeds (waiting is not a failure).
func TestAdminLimitsHoldTheFleetToARate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 16})
	var mu sync.Mutex
	var times []time.Time
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
	})
	s := breaker.Settings{Consecutive: 100}
	_, br := h.startWithBreaker(s, time.Now)
	_, br2 := h.startWithBreaker(s, time.Now)
	if _, err := br.SetLimits(t.Context(), breaker.Limits{ActionID: "shop", Rate: 20, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := br2.GetLimits("shop"); ok {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	const n = 50
	for i := range n {
		h.trigger(&events.Trigger{ID: "lim" + strconv.Itoa(i), ActionID: "shop", Source: "bot", Request: events.Request{Method: "GET", URL: api.URL}})
	}
	res := h.results(n, 30*time.Second)
	for _, r := range res {
		if r.Status != events.StatusSucceeded {
			t.Errorf("%s: %s %+v", r.TriggerID, r.Status, r.Error)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != n {
		t.Fatalf("%d calls, want %d", len(times), n)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	// At most rate + burst + one chunk per replica in any second.
	for i := range times {
		j := i
		for j < len(times) && times[j].Sub(times[i]) < time.Second {
			j++
		}
		if j-i > 23 {
			t.Fatalf("%d calls within one second from call %d, limit 20/s (+1 burst, +1 chunk per replica)", j-i, i)
		}
	}
	if span := times[len(times)-1].Sub(times[0]); span < 2*time.Second {
		t.Errorf("%d calls over %s: the rate of 20/s was not held", n, span)
	}
}
