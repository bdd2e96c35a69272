package consumer

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"customactions/breaker"
	"customactions/events"
)

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	limit := time.Minute
	for _, tc := range []struct {
		status int
		header string
		want   time.Duration
		ok     bool
	}{
		{429, "2", 2 * time.Second, true},
		{503, "0", 0, true},
		{429, "9223372036854775807", limit, true},
		{429, "18446744073709551616", 0, false},
		{429, "-1", 0, false},
		{429, "soon", 0, false},
		{429, "", 0, false},
		{500, "2", 0, false},
		{429, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), limit, true},
		{429, time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, true},
	} {
		got, ok := retryAfter(&callResult{status: tc.status, headers: map[string]string{"Retry-After": tc.header}}, limit)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%d Retry-After %q: %s %v, want %s %v", tc.status, tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

// throttledAPI answers its first call 429 with Retry-After and the others
// 200, recording when each call came.
type throttledAPI struct {
	*recordingAPI
	mu    sync.Mutex
	times []time.Time
}

func newThrottledAPI(t *testing.T, retryAfter string) *throttledAPI {
	a := &throttledAPI{}
	a.recordingAPI = newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.times = append(a.times, time.Now())
		first := len(a.times) == 1
		a.mu.Unlock()
		if first {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	return a
}

func (a *throttledAPI) calls() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.times...)
}

// TestRetryAfterHoldsBackEveryReplica: after a 429 with Retry-After: 1,
// neither replica calls the action for that second; the triggers that
// came meanwhile wait and succeed, the throttled one is sent once more.
func TestRetryAfterHoldsBackEveryReplica(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 8})
	api := newThrottledAPI(t, "1")
	s := breaker.Settings{Consecutive: 100}
	h.startWithBreaker(s, time.Now)
	h.startWithBreaker(s, time.Now)
	h.trigger(&events.Trigger{ID: "first", ActionID: "shop", Source: "bot", Request: events.Request{Method: "GET", URL: api.URL}})
	deadline := time.Now().Add(5 * time.Second)
	for len(api.calls()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the pause reaches both replicas' watch
	for i := range 6 {
		h.trigger(&events.Trigger{ID: "next" + strconv.Itoa(i), ActionID: "shop", Source: "bot", Request: events.Request{Method: "GET", URL: api.URL}})
	}
	res := h.results(7, 20*time.Second)
	calls := api.calls()
	if len(res) != 7 || len(calls) != 8 {
		t.Fatalf("%d results, %d calls; want 7 and 8 (the throttled one twice)", len(res), len(calls))
	}
	for _, c := range calls[1:] {
		if c.Sub(calls[0]) < 950*time.Millisecond {
			t.Errorf("a call %s after the 429 ignored its Retry-After of 1 s", c.Sub(calls[0]).Round(time.Millisecond))
		}
	}
	for _, r := range res {
		if r.Status != events.StatusSucceeded {
			t.Errorf("%s: %s %+v", r.TriggerID, r.Status, r.Error)
		}
		if r.TriggerID == "first" && r.Attempts != 2 {
			t.Errorf("the throttled trigger made %d attempts, want 2", r.Attempts)
		}
	}
	var throttled, unthrottled int
	deadline = time.Now().Add(5 * time.Second)
	for unthrottled == 0 && time.Now().Before(deadline) {
		throttled, unthrottled = 0, 0
		for _, l := range h.logEvents(0, 0) {
			switch l.Event {
			case events.EventActionThrottled:
				throttled++
			case events.EventActionUnthrottled:
				unthrottled++
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if throttled != 1 || unthrottled != 1 {
		t.Errorf("%d action_throttled and %d action_unthrottled events, want one each", throttled, unthrottled)
	}
}

// TestRateLimitedWhenTheDeadlineIsTooShort: a pause longer than the
// trigger's deadline allows ends the trigger rate_limited with
// retry_after_ms; a trigger that comes during the pause is answered the
// same way without a call.
func TestRateLimitedWhenTheDeadlineIsTooShort(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MaxRetryAfter: time.Minute})
	api := newThrottledAPI(t, "3600")
	h.startWithBreaker(breaker.Settings{Consecutive: 100}, time.Now)
	req := events.Request{Method: "GET", URL: api.URL, TimeoutMS: 1000}
	h.trigger(&events.Trigger{ID: "first", ActionID: "shop", Source: "bot", Request: req})
	r := h.result("first", 10*time.Second)
	if r.Status != events.StatusFailed || r.Error == nil || r.Error.Code != events.CodeRateLimited || r.RetryAfterMS < 59000 || r.RetryAfterMS > 60000 ||
		r.HTTPStatus != 429 || r.Attempts != 1 {
		t.Errorf("first: %s %+v retry_after_ms %d http %d attempts %d", r.Status, r.Error, r.RetryAfterMS, r.HTTPStatus, r.Attempts)
	}
	h.trigger(&events.Trigger{ID: "second", ActionID: "shop", Source: "bot", Request: req})
	r = h.result("second", 10*time.Second)
	if r.Error == nil || r.Error.Code != events.CodeRateLimited || r.Attempts != 0 || r.RetryAfterMS < 50000 {
		t.Errorf("second: %s %+v retry_after_ms %d attempts %d", r.Status, r.Error, r.RetryAfterMS, r.Attempts)
	}
	if n := len(api.calls()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestFewTriggersQueueBehindAPause: while an action is paused, only a few
// of its triggers wait (its slots, and twice as many parked); the others
// are answered rate_limited at once without a call, so a flood for a
// paused action cannot fill MaxAckPending, which every action shares.
func TestFewTriggersQueueBehindAPause(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 8, ActionConcurrency: 1})
	api := newThrottledAPI(t, "3")
	h.startWithBreaker(breaker.Settings{Consecutive: 100}, time.Now)
	h.trigger(&events.Trigger{ID: "first", ActionID: "shop", Source: "bot", Request: events.Request{Method: "GET", URL: api.URL}})
	deadline := time.Now().Add(5 * time.Second)
	for len(api.calls()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the pause is recorded
	for i := range 10 {
		h.trigger(&events.Trigger{ID: "flood" + strconv.Itoa(i), ActionID: "shop", Source: "bot", Request: events.Request{Method: "GET", URL: api.URL}})
	}
	// Before the pause of 3 s ends: the first holds the slot, 2 wait
	// parked, 8 are answered.
	res := h.results(8, 2*time.Second)
	limited := 0
	for _, r := range res {
		if r.Error != nil && r.Error.Code == events.CodeRateLimited && r.Attempts == 0 && r.RetryAfterMS > 0 {
			limited++
		}
	}
	if limited != 8 || len(api.calls()) != 1 {
		t.Errorf("%d of %d early results rate_limited without a call, %d calls; want 8 and 1 call", limited, len(res), len(api.calls()))
	}
	// The ones that waited are sent after the pause.
	all := h.results(11, 20*time.Second)
	succeeded := 0
	for _, r := range all {
		if r.Status == events.StatusSucceeded {
			succeeded++
		}
	}
	if len(all) != 11 || succeeded != 3 {
		t.Errorf("%d results, %d succeeded; want 11 and the 3 that waited", len(all), succeeded)
	}
}
