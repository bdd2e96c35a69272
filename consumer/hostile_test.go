package consumer

import (
	"encoding/base64"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"customactions/auth"
	"customactions/events"
	"customactions/internal/natstest"
)

// startDefaultServer starts a nats-server with its default max_payload
// (1 MB), as an external deployment has, instead of the embedded 8 MiB.
func startDefaultServer(t *testing.T) *natstest.Server {
	t.Helper()
	dir := t.TempDir()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return &natstest.Server{Server: ns, Dir: dir}
}

// TestResultsAlwaysFitAMessage: a response whose result would not fit the
// server's max_payload is stored cut, with truncated set, after one call,
// instead of the API being called again on every redelivery.
func TestResultsAlwaysFitAMessage(t *testing.T) {
	t.Parallel()
	h := newHarnessOn(t, startDefaultServer(t), Config{})
	var calls atomic.Int64
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/plain":
			_, _ = w.Write([]byte(strings.Repeat("a", 1<<20))) // exactly the 1 MiB cap
		case "/control":
			_, _ = w.Write([]byte(strings.Repeat("\x01", 1<<20))) // 6 MiB once escaped
		case "/big-header":
			w.Header().Set("X-Big", strings.Repeat("h", 3<<20))
			w.WriteHeader(200)
		}
	})
	h.start()
	for _, path := range []string{"/plain", "/control", "/big-header"} {
		h.trigger(&events.Trigger{ID: "fit" + strings.TrimPrefix(path, "/"), ActionID: "big", Source: "bot",
			Request: events.Request{Method: "GET", URL: api.URL + path}})
	}
	res := h.results(3, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // a redelivery would call again
	if n := calls.Load(); n != 3 {
		t.Errorf("the API was called %d times for 3 triggers", n)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	for _, r := range res {
		switch r.TriggerID {
		case "fitplain", "fitcontrol":
			if r.Status != events.StatusSucceeded || r.Response == nil || !r.Response.Truncated || len(r.Response.Body) == 0 {
				t.Errorf("%s: status %s, response %v: want succeeded with the body cut", r.TriggerID, r.Status, r.Response != nil)
			}
		case "fitbig-header":
			if r.Status != events.StatusFailed || r.Error == nil || !strings.Contains(r.Error.Message, "header") {
				t.Errorf("%s: %s %+v, want failed saying the headers are too large", r.TriggerID, r.Status, r.Error)
			}
		}
	}
}

// TestStoringAResultIsRetriedNotTheCall: while the results stream cannot
// take the result, the publish is retried; the action is called once.
func TestStoringAResultIsRetriedNotTheCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{ResultRetry: time.Minute})
	var calls atomic.Int64
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	ctx := t.Context()
	h.start() // sets the streams up
	stream, err := h.js.Stream(ctx, h.cfg.ResultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	if err := h.js.DeleteStream(ctx, h.cfg.ResultStream); err != nil {
		t.Fatal(err)
	}
	h.trigger(&events.Trigger{ID: "slow-store", ActionID: "act", Source: "bot", Request: events.Request{Method: "GET", URL: api.URL}})
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the result cannot be stored meanwhile
	if _, err := h.js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	r := h.result("slow-store", 30*time.Second)
	if r.Status != events.StatusSucceeded || calls.Load() != 1 {
		t.Errorf("result %s after %d calls, want succeeded after 1", r.Status, calls.Load())
	}
	if !strings.Contains(h.logs.String(), "storing a result failed; trying again") {
		t.Errorf("the retries were not logged: %s", h.logs.String())
	}
}

// TestSecretsDoNotFollowRedirectsToAnotherHost: the token's header (here
// X-Api-Key, which net/http keeps), a header the trigger marked sensitive
// and the well-known credential headers are dropped on a redirect to
// another host; the Referer never carries the first URL's query.
func TestSecretsDoNotFollowRedirectsToAnotherHost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	other := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	first := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/landed", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/landed", http.StatusFound)
		}
	})
	h.putToken(auth.Token{ID: "key", Type: auth.TypeText, Value: "text-secret-value-1", Header: "X-Api-Key"})
	h.start()
	req := func(path string) events.Request {
		return events.Request{Method: "GET", URL: first.URL + path + "?api_key=query-secret",
			Headers:          map[string]string{"X-Signature": "sig-secret", "Cookie": "session=cookie-secret", "X-Trace": "t1"},
			SensitiveHeaders: []string{"X-Signature"}}
	}
	h.trigger(&events.Trigger{ID: "away", ActionID: "act", Source: "bot", TokenID: "key", Request: req("/away")})
	h.result("away", 20*time.Second)
	h.trigger(&events.Trigger{ID: "here", ActionID: "act", Source: "bot", TokenID: "key", Request: req("/here")})
	h.result("here", 20*time.Second)

	landed := other.Calls()
	if len(landed) != 1 {
		t.Fatalf("the other host got %d calls, want 1", len(landed))
	}
	got := landed[0].Header
	for _, name := range []string{"X-Api-Key", "X-Signature", "Cookie", "Referer"} {
		if v := got.Get(name); v != "" {
			t.Errorf("the other host received %s: %q", name, v)
		}
	}
	if got.Get("X-Trace") != "t1" {
		t.Error("a header that is not sensitive was dropped")
	}
	same := first.Calls()
	last := same[len(same)-1]
	if last.Path != "/landed" || last.Header.Get("X-Api-Key") != "text-secret-value-1" || last.Header.Get("Referer") != "" {
		t.Errorf("a redirect on the same host: path %s, token header %q, referer %q; want the token kept and no referer",
			last.Path, last.Header.Get("X-Api-Key"), last.Header.Get("Referer"))
	}
}

// TestEchoedSecretsAreRedactedFromResults: an API that echoes the token (a
// text token and a fetched one, raw and encoded, in its body and its
// headers) does not put it into the stored result.
func TestEchoedSecretsAreRedactedFromResults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	as := newAuthServer(t)
	echo := func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		tok := strings.TrimPrefix(v, "Bearer ")
		w.Header().Set("X-Echo", v)
		if r.URL.Path == "/deny" {
			w.WriteHeader(401)
		}
		_, _ = w.Write([]byte(`{"you_sent":"` + v + `","b64":"` + base64.StdEncoding.EncodeToString([]byte(tok)) + `"}`))
	}
	api := newAPI(t, echo)
	h.putToken(auth.Token{ID: "crm", Type: auth.TypeText, Value: "text-token-secret-5678", Prefix: "Bearer "})
	h.putToken(auth.Token{ID: "shop", Type: auth.TypeHTTP, Prefix: "Bearer ", TokenPath: "data.tokens[0].value",
		Request: &auth.AuthRequest{Method: "POST", URL: as.auth.URL + "/oauth/token", Params: map[string]auth.Secret{"client_secret": clientSecret}}})
	h.start()
	for _, tc := range []struct{ id, token, path string }{{"echo-text", "crm", "/ok"}, {"echo-http", "shop", "/ok"}, {"echo-401", "crm", "/deny"}} {
		h.trigger(&events.Trigger{ID: tc.id, ActionID: "echo", Source: "bot", TokenID: tc.token,
			Request: events.Request{Method: "GET", URL: api.URL + tc.path}})
	}
	for _, id := range []string{"echo-text", "echo-http", "echo-401"} {
		r := h.result(id, 20*time.Second)
		if r.Response == nil || !strings.Contains(r.Response.Body, "****") {
			t.Errorf("%s: response %+v, want the echoed token masked", id, r.Response)
			continue
		}
		stored := r.Response.Body + r.Response.Headers["X-Echo"]
		assertNoSecret(t, id, stored, "text-token-secret-5678", "tok-1-secretvalue",
			base64.StdEncoding.EncodeToString([]byte("text-token-secret-5678")), base64.StdEncoding.EncodeToString([]byte("tok-1-secretvalue")))
	}
}

// TestLargeResponsesWaitForMemory: with a response memory budget that
// holds one large response, many concurrent large responses are all
// answered, each called once, and never more than the budget is taken.
func TestLargeResponsesWaitForMemory(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 8, ResponseBodyCap: 256 << 10, ResponseMemory: 2 << 20})
	var calls atomic.Int64
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = w.Write([]byte(strings.Repeat("x", 300<<10)))
	})
	rep := h.start()
	if weight := rep.svc.largeResponseWeight(); weight <= 1<<20 {
		t.Fatalf("weight %d: the test needs a budget of at most one large response", weight)
	}
	const n = 16
	for i := range n {
		h.trigger(&events.Trigger{ID: "big" + string(rune('a'+i)), ActionID: "big", Source: "bot",
			Request: events.Request{Method: "GET", URL: api.URL}})
	}
	res := h.results(n, 60*time.Second)
	if len(res) != n || calls.Load() != n {
		t.Fatalf("%d results after %d calls, want %d each", len(res), calls.Load(), n)
	}
	for _, r := range res {
		if r.Status != events.StatusSucceeded || !r.Response.Truncated || len(r.Response.Body) != 256<<10 {
			t.Errorf("%s: %s, %d bytes", r.TriggerID, r.Status, len(r.Response.Body))
		}
	}
	if got := rep.svc.budget.peak.Load(); got > 2<<20 || got == 0 {
		t.Errorf("peak response memory taken %d, want one large response within the budget %d", got, 2<<20)
	}
}

// TestEchoStraddlingTheCapIsMasked: a token echoed across the response
// body cap is masked whole, not left in part before the cut.
func TestEchoStraddlingTheCapIsMasked(t *testing.T) {
	t.Parallel()
	const bodyCap = 4096
	h := newHarness(t, Config{ResponseBodyCap: bodyCap})
	secret := "straddling-token-secret-0123456789"
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", bodyCap-14) + secret + strings.Repeat("y", 1000)))
	})
	h.putToken(auth.Token{ID: "t", Type: auth.TypeText, Value: auth.Secret(secret)})
	h.start()
	h.trigger(&events.Trigger{ID: "cap", ActionID: "echo", Source: "bot", TokenID: "t", Request: events.Request{Method: "GET", URL: api.URL}})
	r := h.result("cap", 20*time.Second)
	if r.Response == nil || !r.Response.Truncated || len(r.Response.Body) > bodyCap {
		t.Fatalf("response %+v", r.Response)
	}
	if tail := r.Response.Body[bodyCap-14:]; strings.Contains(tail, secret[:10]) {
		t.Errorf("the part of the token before the cap is stored: %q", tail)
	}
}
