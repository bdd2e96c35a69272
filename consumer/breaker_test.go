package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"customactions/admin"
	"customactions/auth"
	"customactions/breaker"
	"customactions/events"
	"customactions/internal/natstest"
	"customactions/internal/testclock"
)

// startWithBreaker runs a replica with a shared breaker on its own
// connection, publishing transitions as log events, and serving admin
// requests.
func (h *harness) startWithBreaker(s breaker.Settings, clock func() time.Time) (*replica, *breaker.Breaker) {
	h.t.Helper()
	nc, js := natstest.Connect(h.t, h.srv)
	kv, err := js.KeyValue(context.Background(), h.cfg.BreakerBucket)
	if err != nil {
		h.t.Fatal(err)
	}
	pub := events.NewPublisher(js, events.NewSubjects(h.cfg.Prefix))
	br, err := breaker.New(kv, s, breaker.WithClock(clock), breaker.OnTransition(TransitionLog(pub, slog.New(slog.DiscardHandler), time.Now)),
		breaker.OnThrottle(ThrottleLog(pub, slog.New(slog.DiscardHandler), time.Now)))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	if err := br.Watch(ctx); err != nil {
		h.t.Fatal(err)
	}
	rep := h.start(WithBreaker(br))
	adm := admin.New(h.cfg.Prefix, rep.svc.Tokens(), rep.svc.Manager(), auth.NewFetcher(), br, nil)
	sub, err := adm.Subscribe(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return rep, br
}

func TestBreakerTwoReplicasPauseTogether(t *testing.T) {
	h := newHarness(t, Config{Workers: 8})
	clock := testclock.New(time.Now())
	var calls, late atomic.Int64
	var brA, brB *breaker.Breaker
	var ready atomic.Bool
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		// A call that arrives when both replicas already see the breaker
		// open was let through before it opened: it was in flight.
		if ready.Load() && brA.Get("flaky").State == breaker.Open && brB.Get("flaky").State == breaker.Open {
			late.Add(1)
		}
		time.Sleep(2 * time.Millisecond)
		w.WriteHeader(503)
	})
	s := breaker.Settings{MinCalls: 10, FailureRatio: 0.5, Consecutive: 1000, Cooldown: time.Minute}
	_, brA = h.startWithBreaker(s, clock.Now)
	_, brB = h.startWithBreaker(s, clock.Now)
	ready.Store(true)
	live := func(id string) *events.Trigger {
		return &events.Trigger{ID: id, ActionID: "flaky", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL}}
	}
	const n = 200
	for i := range n {
		h.trigger(live(fmt.Sprintf("b%d", i)))
	}
	results := h.results(n, 30*time.Second)
	waitDrained(t, h)
	var failed, paused int
	for _, r := range results {
		switch r.Status {
		case events.StatusFailed:
			failed++
		case events.StatusBreakerOpen:
			paused++
			if r.Error == nil || r.Error.Code != events.CodeBreakerOpen || r.Attempts != 0 {
				t.Errorf("breaker_open result %+v", r)
			}
		}
	}
	t.Logf("%d triggers: %d failed calls reached the API before the breaker opened, %d answered breaker_open; API saw %d calls",
		n, failed, paused, calls.Load())
	if brA.Get("flaky").State != breaker.Open || brB.Get("flaky").State != breaker.Open {
		t.Fatalf("breaker states %s / %s, want open on both replicas", brA.Get("flaky").State, brB.Get("flaky").State)
	}
	// After it opened, no more live calls than were in flight (2 replicas x 8 workers).
	t.Logf("%d calls arrived after both replicas saw the breaker open (in flight before it opened)", late.Load())
	if int64(failed) != calls.Load() || late.Load() > 2*8 {
		t.Errorf("%d calls reached the API, %d after it opened; want at most the %d in flight", calls.Load(), late.Load(), 2*8)
	}
	// Both replicas answer breaker_open now.
	before := calls.Load()
	for i := range 20 {
		h.trigger(live(fmt.Sprintf("after%d", i)))
	}
	results = h.results(n+20, 10*time.Second)
	waitDrained(t, h)
	if calls.Load() != before {
		t.Errorf("the API got %d calls while the breaker was open", calls.Load()-before)
	}
	after := 0
	for _, r := range results {
		if strings.HasPrefix(r.TriggerID, "after") && r.Status == events.StatusBreakerOpen {
			after++
		}
	}
	if after != 20 {
		t.Errorf("%d of the 20 triggers sent after the breaker opened got breaker_open", after)
	}
	// breaker_rejected log events are rate-limited, and there is one breaker_opened.
	opened, rejected := 0, 0
	for _, l := range h.logEvents(1, 5*time.Second) {
		switch l.Event {
		case events.EventBreakerOpened:
			opened++
			if l.Details["failures"] == nil {
				t.Errorf("breaker_opened without counts: %+v", l)
			}
		case events.EventBreakerRejected:
			rejected++
		}
	}
	if opened != 1 {
		t.Errorf("%d breaker_opened events, want 1", opened)
	}
	if rejected == 0 || rejected > 4 {
		t.Errorf("%d breaker_rejected events for %d refused triggers, want a few (rate-limited)", rejected, paused+20)
	}
}

func TestBreakerTestTriggersBypassAndAdminReset(t *testing.T) {
	h := newHarness(t, Config{Workers: 4})
	clock := testclock.New(time.Now())
	fail := atomic.Bool{}
	fail.Store(true)
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(500)
		}
	})
	s := breaker.Settings{Consecutive: 3, Cooldown: time.Minute}
	_, brA := h.startWithBreaker(s, clock.Now)
	_, brB := h.startWithBreaker(s, clock.Now)
	trig := func(id, source string) {
		h.trigger(&events.Trigger{ID: id, ActionID: "act", Source: source, Request: events.Request{Method: "GET", URL: api.URL}})
	}
	for i := range 3 {
		trig(fmt.Sprintf("live%d", i), "bot")
		h.result(fmt.Sprintf("live%d", i), 10*time.Second)
	}
	deadline := time.Now().Add(5 * time.Second)
	// Each replica learns of the other's change through its watch, a few
	// milliseconds later.
	for (brA.Get("act").State != breaker.Open || brB.Get("act").State != breaker.Open) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stBefore := brA.Get("act")
	if stBefore.State != breaker.Open {
		t.Fatalf("breaker %s, want open", stBefore.State)
	}
	// A test trigger goes through while open, and leaves the state as it was.
	calls := len(api.Calls())
	trig("test-run", "test")
	if r := h.result("test-run", 10*time.Second); r.Status != events.StatusFailed || r.Attempts != 1 {
		t.Errorf("test trigger while open: %+v", r)
	}
	if len(api.Calls()) != calls+1 {
		t.Error("the test trigger did not reach the API")
	}
	time.Sleep(200 * time.Millisecond)
	if st := brA.Get("act"); st.State != stBefore.State || st.Generation != stBefore.Generation {
		t.Errorf("a test trigger changed the breaker: %+v -> %+v", stBefore, st)
	}
	// Admin lists and resets it; every replica sees it closed.
	msg, err := h.nc.Request("actions.admin.breakers.list", []byte(`{}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Breakers []breaker.Status }
	if err := json.Unmarshal(msg.Data, &list); err != nil || len(list.Breakers) != 1 || list.Breakers[0].State != breaker.Open {
		t.Fatalf("breakers.list = %s", msg.Data)
	}
	msg, err = h.nc.Request("actions.admin.breakers.reset", []byte(`{"action_id":"act"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st breaker.Status
	if err := json.Unmarshal(msg.Data, &st); err != nil || st.State != breaker.Closed {
		t.Fatalf("breakers.reset = %s", msg.Data)
	}
	deadline = time.Now().Add(5 * time.Second)
	for (brA.Get("act").State != breaker.Closed || brB.Get("act").State != breaker.Closed) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if brA.Get("act").State != breaker.Closed || brB.Get("act").State != breaker.Closed {
		t.Fatal("reset did not close the breaker on both replicas")
	}
	fail.Store(false)
	trig("after-reset", "inbox")
	if r := h.result("after-reset", 10*time.Second); r.Status != events.StatusSucceeded {
		t.Errorf("after reset: %+v", r)
	}
	msg, _ = h.nc.Request("actions.admin.breakers.reset", []byte(`{"action_id":"bad id"}`), 5*time.Second)
	var e struct{ Error *events.Error }
	if json.Unmarshal(msg.Data, &e); e.Error == nil || e.Error.Code != admin.CodeBadRequest {
		t.Errorf("reset of a bad id: %s", msg.Data)
	}
}

func TestBreakerProbeAfterCooldown(t *testing.T) {
	h := newHarness(t, Config{Workers: 4})
	clock := testclock.New(time.Now())
	var fail atomic.Bool
	fail.Store(true)
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(500)
		}
	})
	_, br := h.startWithBreaker(breaker.Settings{Consecutive: 2, Cooldown: 30 * time.Second}, clock.Now)
	trig := func(id string) events.Result {
		h.trigger(&events.Trigger{ID: id, ActionID: "act", Source: "inbox", Request: events.Request{Method: "GET", URL: api.URL}})
		return h.result(id, 10*time.Second)
	}
	trig("f1")
	trig("f2")
	for br.Get("act").State != breaker.Open {
		time.Sleep(5 * time.Millisecond)
	}
	if r := trig("paused"); r.Status != events.StatusBreakerOpen {
		t.Fatalf("while open: %+v", r)
	}
	clock.Advance(31 * time.Second)
	if r := trig("probe1"); r.Status != events.StatusFailed { // failed probe: open again, 60 s
		t.Fatalf("probe: %+v", r)
	}
	for br.Get("act").State != breaker.Open {
		time.Sleep(5 * time.Millisecond)
	}
	if st := br.Get("act"); st.CooldownMS != 60000 {
		t.Errorf("cool-down after a failed probe %d ms, want 60000", st.CooldownMS)
	}
	clock.Advance(31 * time.Second)
	if r := trig("still-paused"); r.Status != events.StatusBreakerOpen {
		t.Fatalf("within the doubled cool-down: %+v", r)
	}
	clock.Advance(30 * time.Second)
	fail.Store(false)
	if r := trig("probe2"); r.Status != events.StatusSucceeded {
		t.Fatalf("second probe: %+v", r)
	}
	for br.Get("act").State != breaker.Closed {
		time.Sleep(5 * time.Millisecond)
	}
	var seq []string
	for _, l := range h.logEvents(1, time.Second) {
		switch l.Event {
		case events.EventBreakerOpened, events.EventBreakerHalfOpen, events.EventBreakerClosed:
			seq = append(seq, l.Event)
		}
	}
	want := fmt.Sprint([]string{"breaker_opened", "breaker_half_open", "breaker_opened", "breaker_half_open", "breaker_closed"})
	if fmt.Sprint(seq) != want {
		t.Errorf("breaker events %v, want %s", seq, want)
	}
}
