package consumer

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
	"customactions/events"
)

// recorded is what an API received.
type recorded struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

type recordingAPI struct {
	*httptest.Server
	mu    sync.Mutex
	calls []recorded
}

func newAPI(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *recordingAPI {
	api := &recordingAPI{}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		api.calls = append(api.calls, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone()})
		api.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *recordingAPI) Calls() []recorded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]recorded(nil), a.calls...)
}

func TestTextTokenCallAndResult(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Order", "o-1")
		w.WriteHeader(201)
		fmt.Fprint(w, `{"order":"o-1"}`)
	})
	const secret = "s3cr3t-value-abcd"
	h.putToken(auth.Token{ID: "crm", Name: "CRM", Type: "text", Value: secret, Prefix: "Bearer ", Header: "Authorization"})
	h.start()

	tr := &events.Trigger{ID: "trg-1", ActionID: "create-order", Source: "inbox", TokenID: "crm",
		Request: events.Request{Method: "POST", URL: api.URL + "/orders?x=1",
			Headers: map[string]string{"Content-Type": "application/json", "X-Custom": "v"}, Body: `{"sku":"A-1"}`},
		Context: json.RawMessage(`{"conversation_id":"123","nested":{"a":[1,2]}}`)}
	h.trigger(tr)
	res := h.result("trg-1", 10*time.Second)

	calls := api.Calls()
	if len(calls) != 1 {
		t.Fatalf("API got %d calls, want 1", len(calls))
	}
	c := calls[0]
	if got := c.Header.Get("Authorization"); got != "Bearer "+secret {
		t.Errorf("Authorization = %q, want the token header", got)
	}
	if c.Method != "POST" || c.Path != "/orders" || c.Query != "x=1" || c.Body != `{"sku":"A-1"}` {
		t.Errorf("request arrived as %+v", c)
	}
	if c.Header.Get("X-Custom") != "v" || c.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers arrived as %v", c.Header)
	}
	if c.Header.Get("Idempotency-Key") != "trg-1" {
		t.Errorf("Idempotency-Key = %q, want trg-1", c.Header.Get("Idempotency-Key"))
	}
	if res.Status != events.StatusSucceeded || res.HTTPStatus != 201 || res.Attempts != 1 || res.Error != nil {
		t.Errorf("result = %+v", res)
	}
	if res.Response == nil || res.Response.Body != `{"order":"o-1"}` || res.Response.Headers["X-Order"] != "o-1" || res.Response.Truncated {
		t.Errorf("response = %+v", res.Response)
	}
	if string(res.Context) != `{"conversation_id":"123","nested":{"a":[1,2]}}` {
		t.Errorf("context = %s, want it verbatim", res.Context)
	}
	if res.ActionID != "create-order" || res.Source != "inbox" || res.TokenID != "crm" {
		t.Errorf("names = %+v", res)
	}
	start, err1 := time.Parse(time.RFC3339Nano, res.StartedAt)
	end, err2 := time.Parse(time.RFC3339Nano, res.FinishedAt)
	if err1 != nil || err2 != nil || end.Before(start) || !strings.HasSuffix(res.StartedAt, "Z") {
		t.Errorf("timestamps %q %q", res.StartedAt, res.FinishedAt)
	}
	logs := h.logEvents(1, 5*time.Second)
	if len(logs) != 1 || logs[0].Event != events.EventActionSucceeded || logs[0].TriggerID != "trg-1" || string(logs[0].Context) != string(tr.Context) {
		t.Errorf("log events = %+v", logs)
	}
	raw, _ := json.Marshal(logs)
	assertNoSecret(t, "log events", string(raw), secret)
	raw, _ = json.Marshal(res)
	assertNoSecret(t, "result", string(raw), secret)
	assertNoSecret(t, "process log", h.logs.String(), secret)
}

func TestIdempotencyKeyFromTriggerIsKept(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	h.start()
	h.trigger(&events.Trigger{ID: "t1", ActionID: "a", Source: "bot",
		Request: events.Request{Method: "GET", URL: api.URL, Headers: map[string]string{"Idempotency-Key": "mine"}}})
	h.result("t1", 10*time.Second)
	if got := api.Calls()[0].Header.Get("Idempotency-Key"); got != "mine" {
		t.Errorf("Idempotency-Key = %q, want the trigger's own", got)
	}
}

func TestInvalidTriggersAreRejectedAndAcked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MaxTriggerBytes: 4096})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	h.start()
	good := func(id string) *events.Trigger {
		return &events.Trigger{ID: id, ActionID: "act", Source: "inbox", Request: events.Request{Method: "GET", URL: api.URL}}
	}
	tests := []struct {
		name     string
		subject  string
		data     any
		wantID   string
		wantCode string
		wantMsg  string
	}{
		{"bad json", "actions.trigger.inbox.act", []byte(`{"id": "x1", `), "seq-1", events.CodeInvalidTrigger, "not a valid trigger JSON"},
		{"missing id", "actions.trigger.inbox.act", func() any { t := good(""); return t }(), "seq-2", events.CodeInvalidTrigger, "missing field id"},
		{"missing url", "actions.trigger.inbox.act", func() any { t := good("x3"); t.Request.URL = ""; return t }(), "x3", events.CodeInvalidTrigger, "missing field request.url"},
		{"action mismatch", "actions.trigger.inbox.other", good("x4"), "x4", events.CodeInvalidTrigger, `does not match the subject's action id "other"`},
		{"source mismatch", "actions.trigger.bot.act", good("x5"), "x5", events.CodeInvalidTrigger, `source "inbox" does not match the subject's source "bot"`},
		{"bad url", "actions.trigger.inbox.act", func() any { t := good("x6"); t.Request.URL = "ftp://example.com/x"; return t }(), "x6", events.CodeInvalidTrigger, "absolute http or https URL"},
		{"bad method", "actions.trigger.inbox.act", func() any { t := good("x7"); t.Request.Method = "GE T"; return t }(), "x7", events.CodeInvalidTrigger, "not an HTTP method"},
		{"unknown token", "actions.trigger.inbox.act", func() any { t := good("x8"); t.TokenID = "nope"; return t }(), "x8", events.CodeTokenNotFound, `token "nope" does not exist`},
		{"oversized", "actions.trigger.inbox.act", func() any { t := good("x9"); t.Request.Body = strings.Repeat("a", 5000); return t }(), "seq-9", events.CodeInvalidTrigger, "more than the maximum of 4096"},
		{"unknown source", "actions.trigger.email.act", func() any { t := good("x10"); t.Source = "email"; return t }(), "x10", events.CodeInvalidTrigger, "must be one of inbox, bot, test"},
		{"timeout above cap", "actions.trigger.inbox.act", func() any { t := good("x11"); t.Request.TimeoutMS = 61000; return t }(), "x11", events.CodeInvalidTrigger, "more than the maximum of 60000"},
	}
	for _, tc := range tests {
		h.publish(tc.subject, tc.data)
	}
	// The consumer keeps serving: a good trigger after all the bad ones.
	h.trigger(good("after"))
	if r := h.result("after", 10*time.Second); r.Status != events.StatusSucceeded {
		t.Fatalf("good trigger after bad ones: %+v", r)
	}
	results := h.results(len(tests)+1, 10*time.Second)
	byID := map[string]events.Result{}
	for _, r := range results {
		byID[r.TriggerID] = r
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := byID[tc.wantID]
			if !ok {
				t.Fatalf("no result for %s; have %v", tc.wantID, keys(byID))
			}
			if r.Status != events.StatusRejected || r.Error == nil || r.Error.Code != tc.wantCode || !strings.Contains(r.Error.Message, tc.wantMsg) {
				t.Errorf("result = %+v %+v, want rejected %s containing %q", r, r.Error, tc.wantCode, tc.wantMsg)
			}
			if r.Attempts != 0 {
				t.Errorf("attempts = %d, want 0", r.Attempts)
			}
		})
	}
	if n := len(api.Calls()); n != 1 {
		t.Errorf("API got %d calls, want only the good trigger's", n)
	}
	logs := h.logEvents(len(tests)+1, 5*time.Second)
	rejected := 0
	for _, l := range logs {
		if l.Event == events.EventTriggerRejected {
			rejected++
		}
	}
	if rejected != len(tests) {
		t.Errorf("%d trigger_rejected log events, want %d", rejected, len(tests))
	}
	// Nothing is redelivered: the consumer has nothing pending or unacked.
	waitDrained(t, h)
	if got := len(h.results(0, 0)); got != len(tests)+1 {
		t.Errorf("%d results stored, want %d (no redelivery)", got, len(tests)+1)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func waitDrained(t *testing.T, h *harness) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		info, err := h.res.Triggers.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	info, _ := h.res.Triggers.Info(t.Context())
	t.Fatalf("consumer not drained: pending=%d ack_pending=%d redelivered=%d", info.NumPending, info.NumAckPending, info.NumRedelivered)
}

func TestCallFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	slow := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	broken := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		fmt.Fprint(w, "upstream down")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/x"
	ln.Close()
	h.start()

	tests := []struct {
		name, url  string
		timeoutMS  int64
		wantCode   string
		wantStatus int
	}{
		{"timeout", slow.URL, 200, events.CodeTimeout, 0},
		{"connection refused", refused, 0, events.CodeNetworkError, 0},
		{"500", broken.URL, 0, events.CodeHTTPError, 500},
	}
	for i, tc := range tests {
		h.trigger(&events.Trigger{ID: fmt.Sprintf("f%d", i), ActionID: "act", Source: "inbox",
			Request: events.Request{Method: "GET", URL: tc.url, TimeoutMS: tc.timeoutMS}})
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.result(fmt.Sprintf("f%d", i), 10*time.Second)
			if r.Status != events.StatusFailed || r.Error == nil || r.Error.Code != tc.wantCode || r.HTTPStatus != tc.wantStatus || r.Attempts != 1 {
				t.Errorf("result = %+v error %+v, want failed/%s", r, r.Error, tc.wantCode)
			}
		})
	}
	r := h.result("f2", time.Second)
	if r.Response == nil || r.Response.Body != "upstream down" {
		t.Errorf("500 response body = %+v", r.Response)
	}
}

func TestResponseBodyIsCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{ResponseBodyCap: 10})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("x", 100)) })
	h.start()
	h.trigger(&events.Trigger{ID: "big", ActionID: "act", Source: "test", Request: events.Request{Method: "GET", URL: api.URL}})
	r := h.result("big", 10*time.Second)
	if r.Response == nil || r.Response.Body != strings.Repeat("x", 10) || !r.Response.Truncated {
		t.Errorf("response = %+v, want 10 bytes and truncated", r.Response)
	}
}

func TestRedeliveredTriggerStoresOneResult(t *testing.T) {
	h := newHarness(t, Config{AckWait: 3 * time.Second})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	var crashed atomic.Bool
	rep := h.start()
	rep.svc.beforeAck = func(msg jetstream.Msg) bool {
		// Crash before the first ack: the trigger is redelivered.
		return !crashed.CompareAndSwap(false, true)
	}
	h.trigger(&events.Trigger{ID: "twice", ActionID: "act", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL}})
	deadline := time.Now().Add(20 * time.Second)
	for len(api.Calls()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(api.Calls()); n != 2 {
		t.Fatalf("API got %d calls, want 2 (the trigger was redelivered)", n)
	}
	waitDrained(t, h)
	results := h.results(1, time.Second)
	if len(results) != 1 {
		t.Errorf("%d results stored, want 1", len(results))
	}
	for _, c := range api.Calls() {
		if c.Header.Get("Idempotency-Key") != "twice" {
			t.Errorf("Idempotency-Key = %q", c.Header.Get("Idempotency-Key"))
		}
	}
	succeeded := 0
	for _, l := range h.logEvents(1, time.Second) {
		if l.Event == events.EventActionSucceeded {
			succeeded++
		}
	}
	// Each real call to the API is in the Logs tab; the result is stored once.
	if succeeded != 2 {
		t.Errorf("%d action_succeeded events, want 2 (one per call made)", succeeded)
	}
}

// TestLongCallIsKeptAlive: a call that takes longer than AckWait is not
// redelivered to another worker meanwhile, because the trigger is reported
// in progress while it runs; the API sees one call.
func TestLongCallIsKeptAlive(t *testing.T) {
	h := newHarness(t, Config{Workers: 4, AckWait: 3 * time.Second})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(7 * time.Second) })
	h.start()
	h.trigger(&events.Trigger{ID: "slow", ActionID: "act", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL, TimeoutMS: 15000}})
	if r := h.result("slow", 20*time.Second); r.Status != events.StatusSucceeded {
		t.Fatalf("result: %+v %+v", r, r.Error)
	}
	waitDrained(t, h)
	if n := len(api.Calls()); n != 1 {
		t.Errorf("API got %d calls during a 7s call with a 3s ack wait, want 1", n)
	}
}

// TestResponseBodyLengths: a response is read whole up to the cap, whether
// its length is announced (Content-Length) or not (chunked), empty, small,
// past the 64 KiB read without the memory budget, and past the cap.
func TestResponseBodyLengths(t *testing.T) {
	t.Parallel()
	const bodyCap = 100 << 10
	h := newHarness(t, Config{ResponseBodyCap: bodyCap})
	body := func(n int) string { return strings.Repeat("0123456789", n/10+1)[:n] }
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("length") == "known" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
			fmt.Fprint(w, body(n))
			return
		}
		// Chunked: the length is not known before the end.
		w.(http.Flusher).Flush()
		b := body(n)
		for len(b) > 0 {
			k := min(len(b), 3000)
			fmt.Fprint(w, b[:k])
			w.(http.Flusher).Flush()
			b = b[k:]
		}
	})
	h.start()
	for _, length := range []string{"known", "chunked"} {
		for _, n := range []int{0, 11, 4096, 70 << 10, bodyCap, bodyCap + 1, 300 << 10} {
			id := fmt.Sprintf("len-%s-%d", length, n)
			h.trigger(&events.Trigger{ID: id, ActionID: "act", Source: "test",
				Request: events.Request{Method: "GET", URL: fmt.Sprintf("%s/?n=%d&length=%s", api.URL, n, length)}})
			r := h.result(id, 10*time.Second)
			want, truncated := body(min(n, bodyCap)), n > bodyCap
			if r.Response == nil || r.Response.Body != want || r.Response.Truncated != truncated {
				got := -1
				if r.Response != nil {
					got = len(r.Response.Body)
				}
				t.Errorf("%s: %d bytes of body, truncated %v; want %d, %v", id, got, r.Response != nil && r.Response.Truncated, len(want), truncated)
			}
		}
	}
}
