package consumer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"customactions/auth"
	"customactions/events"
)

// authServer is an OAuth-style auth endpoint that hands out tok-<n>-<salt>
// and an API that accepts only the newest token handed out (until it is
// revoked).
type authServer struct {
	auth, api *httptest.Server
	authCalls atomic.Int64
	apiCalls  atomic.Int64
	mu        sync.Mutex
	current   string
	lastAuth  recorded
	authFail  func(w http.ResponseWriter) bool // answer the auth request itself
	expiresIn atomic.Int64                     // token lifetime in seconds (3600 when 0)
	apiStatus func(n int64) int                // override the API's answer
	onAPI     func(n int64)
}

const clientSecret = "client-secret-xyz-987"

func newAuthServer(t *testing.T) *authServer {
	s := &authServer{}
	s.auth = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.authCalls.Add(1)
		_ = r.ParseForm()
		s.mu.Lock()
		s.lastAuth = recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: r.PostForm.Encode(), Header: r.Header.Clone()}
		s.mu.Unlock()
		if s.authFail != nil && s.authFail(w) {
			return
		}
		if r.PostForm.Get("client_secret") != clientSecret {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		tok := fmt.Sprintf("tok-%d-secretvalue", n)
		s.mu.Lock()
		s.current = tok
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		life := s.expiresIn.Load()
		if life == 0 {
			life = 3600
		}
		fmt.Fprintf(w, `{"data":{"tokens":[{"value":%q}]},"expires_in":%d}`, tok, life)
	}))
	s.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.apiCalls.Add(1)
		if s.onAPI != nil {
			s.onAPI(n)
		}
		if s.apiStatus != nil {
			if code := s.apiStatus(n); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		s.mu.Lock()
		ok := s.current != "" && r.Header.Get("Authorization") == "Bearer "+s.current
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(401)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(s.auth.Close)
	t.Cleanup(s.api.Close)
	return s
}

func (s *authServer) revoke() {
	s.mu.Lock()
	s.current = "revoked"
	s.mu.Unlock()
}

func (s *authServer) token() auth.Token {
	return auth.Token{ID: "shop", Name: "Shop", Type: "http", Prefix: "Bearer ", Header: "Authorization",
		Request: &auth.AuthRequest{Method: "POST", URL: s.auth.URL + "/oauth/token",
			Headers: map[string]auth.Secret{"X-Client": "abc-header-secret"},
			Params:  map[string]auth.Secret{"grant_type": "client_credentials", "client_secret": clientSecret}},
		TokenPath: "data.tokens[0].value", ExpiresInPath: "expires_in"}
}

func (s *authServer) trigger(id string) *events.Trigger {
	return &events.Trigger{ID: id, ActionID: "create-order", Source: "inbox", TokenID: "shop",
		Request: events.Request{Method: "POST", URL: s.api.URL + "/orders", Body: `{"sku":"A"}`}}
}

func TestHTTPTokenFetchedOnFirstUse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	as := newAuthServer(t)
	h.putToken(as.token())
	h.start()
	h.trigger(as.trigger("t1"))
	r := h.result("t1", 10*time.Second)
	if r.Status != events.StatusSucceeded || r.Attempts != 1 {
		t.Fatalf("result %+v %+v", r, r.Error)
	}
	if n := as.authCalls.Load(); n != 1 {
		t.Errorf("auth endpoint called %d times, want 1", n)
	}
	a := as.lastAuth
	if a.Method != "POST" || a.Path != "/oauth/token" || a.Header.Get("X-Client") != "abc-header-secret" ||
		!strings.Contains(a.Header.Get("Content-Type"), "application/x-www-form-urlencoded") ||
		a.Body != "client_secret="+clientSecret+"&grant_type=client_credentials" {
		t.Errorf("auth request = %+v", a)
	}
	// A second trigger uses the stored token: no auth request.
	h.trigger(as.trigger("t2"))
	if r := h.result("t2", 10*time.Second); r.Status != events.StatusSucceeded || r.TokenRefreshed {
		t.Errorf("second result %+v", r)
	}
	if n := as.authCalls.Load(); n != 1 {
		t.Errorf("auth endpoint called %d times after two triggers, want 1", n)
	}
}

func TestRefreshOnceOn401(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	as := newAuthServer(t)
	h.putToken(as.token())
	h.start()
	h.trigger(as.trigger("warm"))
	h.result("warm", 10*time.Second)
	as.revoke()
	authBefore, apiBefore := as.authCalls.Load(), as.apiCalls.Load()

	h.trigger(as.trigger("t401"))
	r := h.result("t401", 10*time.Second)
	if r.Status != events.StatusSucceeded || r.Attempts != 2 || !r.TokenRefreshed || r.HTTPStatus != 200 {
		t.Errorf("result %+v %+v, want succeeded after 2 attempts with token_refreshed", r, r.Error)
	}
	if n := as.authCalls.Load() - authBefore; n != 1 {
		t.Errorf("auth endpoint called %d times, want 1", n)
	}
	if n := as.apiCalls.Load() - apiBefore; n != 2 {
		t.Errorf("action called %d times, want 2", n)
	}
	var refreshed []events.LogEvent
	for _, l := range h.logEvents(3, 5*time.Second) {
		if l.Event == events.EventTokenRefreshed && l.TriggerID == "t401" {
			refreshed = append(refreshed, l)
		}
	}
	if len(refreshed) != 1 {
		t.Fatalf("%d token_refreshed events for t401, want 1", len(refreshed))
	}
	raw, _ := json.Marshal(refreshed[0])
	if !strings.Contains(string(raw), "****") {
		t.Errorf("token_refreshed event does not show the masked token: %s", raw)
	}
	assertNoSecret(t, "token_refreshed event", string(raw), "tok-2-secretvalue", "tok-1-secretvalue", clientSecret)
}

func TestUnauthorizedAfterOneRefresh(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	as := newAuthServer(t)
	as.apiStatus = func(int64) int { return 401 }
	h.putToken(as.token())
	h.start()
	h.trigger(as.trigger("forever"))
	r := h.result("forever", 10*time.Second)
	if r.Status != events.StatusFailed || r.Error == nil || r.Error.Code != events.CodeUnauthorized || r.Attempts != 2 {
		t.Errorf("result %+v %+v, want failed/unauthorized after 2 attempts", r, r.Error)
	}
	waitDrained(t, h)
	if n := as.apiCalls.Load(); n != 2 {
		t.Errorf("action called %d times, want exactly 2", n)
	}
	// One fetch for the first use, one refresh after the 401.
	if n := as.authCalls.Load(); n != 2 {
		t.Errorf("auth endpoint called %d times, want 2 (first fetch and one refresh)", n)
	}
}

func TestRefreshFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     func(w http.ResponseWriter) bool
		wantStatus int
		wantMsg    string
	}{
		{"auth answers 500", func(w http.ResponseWriter) bool {
			w.WriteHeader(500)
			fmt.Fprintf(w, "upstream down; client_secret=%s", clientSecret)
			return true
		}, 500, "auth endpoint answered 500"},
		{"no token at the path", func(w http.ResponseWriter) bool {
			fmt.Fprintf(w, `{"data":{"tokens":[]},"access_token":"leaked-token-value-1234","echo":%q}`, clientSecret)
			return true
		}, 200, "token_path"},
		{"auth answers 400 (not retried)", func(w http.ResponseWriter) bool {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return true
		}, 400, "auth endpoint answered 400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			as := newAuthServer(t)
			as.authFail = tc.answer
			h.putToken(as.token())
			h.start()
			h.trigger(as.trigger("rf"))
			r := h.result("rf", 30*time.Second)
			if r.Status != events.StatusFailed || r.Error == nil || r.Error.Code != events.CodeTokenRefreshFailed || r.Attempts != 0 {
				t.Fatalf("result %+v %+v, want failed/token_refresh_failed with no action call", r, r.Error)
			}
			if !strings.Contains(r.Error.Message, tc.wantMsg) {
				t.Errorf("error message %q lacks %q", r.Error.Message, tc.wantMsg)
			}
			var ev *events.LogEvent
			logs := h.logEvents(1, 5*time.Second)
			for i := range logs {
				if logs[i].Event == events.EventTokenRefreshFailed {
					ev = &logs[i]
				}
			}
			if ev == nil {
				t.Fatalf("no token_refresh_failed log event in %+v", logs)
			}
			if got, _ := ev.Details["auth_status"].(float64); int(got) != tc.wantStatus {
				t.Errorf("auth_status = %v, want %d", ev.Details["auth_status"], tc.wantStatus)
			}
			if as.apiCalls.Load() != 0 {
				t.Errorf("the action was called without a token")
			}
			raw, _ := json.Marshal(logs)
			res, _ := json.Marshal(r)
			for where, s := range map[string]string{"log events": string(raw), "result": string(res), "process log": h.logs.String()} {
				assertNoSecret(t, where, s, clientSecret, "abc-header-secret", "leaked-token-value-1234")
			}
		})
	}
}

func TestAuthRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	as := newAuthServer(t)
	var fails atomic.Int64
	as.authFail = func(w http.ResponseWriter) bool {
		if fails.Add(1) <= 2 {
			w.WriteHeader(503)
			return true
		}
		return false
	}
	h.putToken(as.token())
	h.start()
	h.trigger(as.trigger("tr"))
	if r := h.result("tr", 20*time.Second); r.Status != events.StatusSucceeded {
		t.Fatalf("result %+v %+v", r, r.Error)
	}
	if n := as.authCalls.Load(); n != 3 {
		t.Errorf("auth endpoint called %d times, want 3 (two 503s retried)", n)
	}
}

// TestStampede: three replicas with 64 workers each, 500 triggers in
// flight, and an API that revokes its token twice during the run. Every
// trigger succeeds and each rotation costs one auth request.
func TestStampede(t *testing.T) {
	h := newHarness(t, Config{Workers: 64})
	as := newAuthServer(t)
	h.putToken(as.token())
	const n = 500
	revokeAt := map[int64]bool{150: true, 350: true}
	as.onAPI = func(call int64) {
		if revokeAt[call] {
			as.revoke()
		}
	}
	// Every call takes a little while, so hundreds are in flight at once.
	base := as.api.Config.Handler
	as.api.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		base.ServeHTTP(w, r)
	})
	for range 3 {
		h.start()
	}
	for i := range n {
		h.trigger(as.trigger(fmt.Sprintf("st%d", i)))
	}
	results := h.results(n, 60*time.Second)
	if len(results) != n {
		t.Fatalf("%d results, want %d", len(results), n)
	}
	failed, retried := 0, 0
	for _, r := range results {
		if r.Status != events.StatusSucceeded {
			failed++
			if failed < 5 {
				t.Errorf("result %s: %s %+v", r.TriggerID, r.Status, r.Error)
			}
		}
		if r.Attempts == 2 {
			retried++
		}
	}
	authCalls := as.authCalls.Load()
	t.Logf("stampede: %d triggers, 3 replicas x 64 workers, 2 revocations: %d auth requests (1 first fetch + 1 per revocation), %d triggers retried after a 401, %d action calls",
		n, authCalls, retried, as.apiCalls.Load())
	if failed > 0 {
		t.Errorf("%d triggers failed", failed)
	}
	if authCalls != 3 {
		t.Errorf("auth endpoint called %d times, want 3 (first fetch and one per revocation)", authCalls)
	}
}

// TestProactiveRefreshIsLogged: a trigger that finds its token close to
// expiry goes on with it, and the refresh started in the background is in
// that trigger's action log; no call sees a 401.
func TestProactiveRefreshIsLogged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	as := newAuthServer(t)
	as.expiresIn.Store(2) // margin 0.4 s: refreshed in the background within 0.8 s of expiry
	h.putToken(as.token())
	h.start()
	h.trigger(as.trigger("p1"))
	h.result("p1", 10*time.Second)
	time.Sleep(1300 * time.Millisecond)
	h.trigger(as.trigger("p2"))
	if r := h.result("p2", 10*time.Second); r.Status != events.StatusSucceeded || r.Attempts != 1 {
		t.Fatalf("p2: %+v", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	var ev *events.LogEvent
	for ev == nil && time.Now().Before(deadline) {
		for _, l := range h.logEvents(0, 0) {
			if l.Event == events.EventTokenRefreshed && l.TriggerID == "p2" {
				ev = &l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ev == nil || !strings.Contains(ev.Message, "before it expires") {
		t.Fatalf("no background token_refreshed event for p2: %+v", ev)
	}
	if n := as.authCalls.Load(); n != 2 {
		t.Errorf("auth endpoint called %d times, want 2 (first fetch, one proactive refresh)", n)
	}
	if as.apiCalls.Load() != 2 {
		t.Errorf("action called %d times, want 2 (no 401 and retry)", as.apiCalls.Load())
	}
}
