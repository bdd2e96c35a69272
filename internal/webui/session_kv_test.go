package webui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/breaker"
	"customactions/internal/natstest"
)

// breakersBucket is a bucket made like consumer.Setup makes the breakers
// bucket, on a JetStream server of its own.
func breakersBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "ACTIONS_BREAKERS", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// replica serves a UI whose sessions are in kv, as one replica would.
func replica(t *testing.T, kv KV, opts ...Option) *httptest.Server {
	t.Helper()
	s, err := New(Config{Password: "pw-correct-horse", SessionMaxAge: time.Hour}, echoAdmin{}, nil, slog.New(slog.DiscardHandler),
		append([]Option{WithSessionStore(kv)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// loginCookie logs in on srv and returns the session cookie's value.
func loginCookie(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	resp, err := http.Post(srv.URL+"/ui/login", "application/json", strings.NewReader(`{"password":"pw-correct-horse"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == cookieName && resp.StatusCode == 200 {
			return c.Value
		}
	}
	t.Fatalf("login on %s: %d, no session cookie", srv.URL, resp.StatusCode)
	return ""
}

// withSession sends method path to srv with the session cookie v and the
// CSRF header, and returns the status.
func withSession(t *testing.T, srv *httptest.Server, method, path, v string) int {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("{}"))
	req.Header.Set("X-Requested-With", "actions-ui")
	req.AddCookie(&http.Cookie{Name: cookieName, Value: v})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSessionsAreSharedByReplicas(t *testing.T) {
	kv := breakersBucket(t)
	a, b := replica(t, kv), replica(t, kv)

	v := loginCookie(t, a)
	if code := withSession(t, b, "POST", "/ui/api/admin/tokens.list", v); code != 200 {
		t.Fatalf("a login on replica a, used on replica b: %d, want 200", code)
	}
	// A restart (a new Server over the same bucket) keeps the session.
	restarted := replica(t, kv)
	if code := withSession(t, restarted, "GET", "/ui/api/session", v); code != 200 {
		t.Errorf("the session after a restart: %d, want 200", code)
	}
	other := loginCookie(t, restarted)

	// Logging out on b ends the session on a too.
	if code := withSession(t, b, "POST", "/ui/logout", v); code != 200 {
		t.Fatalf("logout on b: %d", code)
	}
	for name, srv := range map[string]*httptest.Server{"a": a, "b": b, "restarted": restarted} {
		if code := withSession(t, srv, "GET", "/ui/api/session", v); code != 401 {
			t.Errorf("the session on %s after logout on b: %d, want 401", name, code)
		}
		if code := withSession(t, srv, "GET", "/ui/api/session", other); code != 200 {
			t.Errorf("another session on %s after that logout: %d, want 200", name, code)
		}
	}
	// A cookie signed with another key (another bucket) is refused.
	if code := withSession(t, replica(t, breakersBucket(t)), "GET", "/ui/api/session", other); code != 401 {
		t.Errorf("a session of another bucket: %d, want 401", code)
	}
}

func TestSessionKeyIsCreatedOnce(t *testing.T) {
	kv := breakersBucket(t)
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			var err error
			if keys[i], err = (&kvStore{kv: kv}).signingKey(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, k := range keys {
		if len(k) != 32 || string(k) != string(keys[0]) {
			t.Errorf("replica %d has key %x, replica 0 %x", i, k, keys[0])
		}
	}
}

func TestExpiredSessionsAreDeletedFromKV(t *testing.T) {
	kv := breakersBucket(t)
	clock := &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	srv := replica(t, kv, WithClock(clock.Now))
	presented, abandoned := loginCookie(t, srv), loginCookie(t, srv)
	clock.Add(time.Hour)
	if code := withSession(t, srv, "GET", "/ui/api/session", presented); code != 401 {
		t.Errorf("a session after its max age: %d, want 401", code)
	}
	// The next login sweeps the session nobody presents again.
	current := loginCookie(t, srv)
	ctx := context.Background()
	keys, err := kv.ListKeysFiltered(ctx, sessionKeyPrefix+"*")
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for k := range keys.Keys() {
		live = append(live, k)
	}
	if len(live) != 1 || !strings.Contains(current, "."+strings.TrimPrefix(live[0], sessionKeyPrefix)+".") {
		t.Errorf("session keys in KV: %v, want only the current one (%s); %s and %s expired", live, current, presented, abandoned)
	}
}

// TestBreakerIgnoresSessions checks that the sessions in the breakers
// bucket are never taken for an action's breaker.
func TestBreakerIgnoresSessions(t *testing.T) {
	kv := breakersBucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	br, err := breaker.New(kv, breaker.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	srv := replica(t, kv)
	withSession(t, srv, "POST", "/ui/logout", loginCookie(t, srv))
	loginCookie(t, srv)
	time.Sleep(200 * time.Millisecond) // let the watch see the puts
	if snap := br.Snapshot(); len(snap) != 0 {
		t.Errorf("the breaker keeps %d states after logins: %+v", len(snap), snap)
	}
	if list, err := br.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("breakers list after logins: %+v %v", list, err)
	}
}

// failingKV is a bucket that cannot be reached.
type failingKV struct{ KV }

var errUnreachable = errors.New("no responders")

func (failingKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, errUnreachable
}

func TestSessionStoreUnreachable(t *testing.T) {
	srv := replica(t, failingKV{})
	resp, err := http.Post(srv.URL+"/ui/login", "application/json", strings.NewReader(`{"password":"pw-correct-horse"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || len(resp.Cookies()) != 0 {
		t.Errorf("login without the store: %d, cookies %v; want 503 and none", resp.StatusCode, resp.Cookies())
	}
	if code := withSession(t, srv, "GET", "/ui/api/session", "1.2.3"); code != http.StatusServiceUnavailable {
		t.Errorf("a request without the store: %d, want 503", code)
	}
}

// TestLoginLockoutIsShared: five failed logins from one address on one
// replica lock that address out on the others too, and the right password
// is refused there until the minute has passed.
func TestLoginLockoutIsShared(t *testing.T) {
	kv := breakersBucket(t)
	a, b := replica(t, kv), replica(t, kv)
	post := func(srv *httptest.Server, pw string) int {
		t.Helper()
		resp, err := http.Post(srv.URL+"/ui/login", "application/json", strings.NewReader(`{"password":"`+pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		if code := post([]*httptest.Server{a, b}[i%2], "wrong"); code != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %d", i+1, code)
		}
	}
	for _, srv := range []*httptest.Server{a, b} {
		if code := post(srv, "pw-correct-horse"); code != http.StatusTooManyRequests {
			t.Errorf("login after 5 failures on two replicas: %d, want 429", code)
		}
	}
}
