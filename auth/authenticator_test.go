package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/natstest"
	"customactions/internal/testclock"
)

// provider is a customer's auth endpoint and API: the endpoint hands out
// a new token per request, the API accepts the tokens issued since the
// last revocation.
type provider struct {
	auth, api *httptest.Server
	authCalls atomic.Int64
	apiCalls  atomic.Int64
	mu        sync.Mutex
	valid     map[string]bool
	lastAuth  http.Header
	// authStatus, when set, is what the endpoint answers instead of a token.
	authStatus atomic.Int64
	authDelay  atomic.Int64 // ms
	expiresIn  atomic.Int64
	// reject makes the API answer 401 to every call.
	reject atomic.Bool
}

func newProvider(t *testing.T) *provider {
	p := &provider{valid: map[string]bool{}}
	p.auth = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.authCalls.Add(1)
		time.Sleep(time.Duration(p.authDelay.Load()) * time.Millisecond)
		if st := p.authStatus.Load(); st != 0 {
			http.Error(w, `{"error":"invalid_client","echo":"client-secret-42"}`, int(st))
			return
		}
		tok := fmt.Sprintf("fetched-%04d-secret", n)
		p.mu.Lock()
		p.valid[tok] = true
		p.mu.Unlock()
		if e := p.expiresIn.Load(); e > 0 {
			fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d}`, tok, e)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q}`, tok)
	}))
	p.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.apiCalls.Add(1)
		p.mu.Lock()
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		ok := p.valid[tok] || r.Header.Get("X-Api-Key") == "key-text-secret"
		p.lastAuth = r.Header.Clone()
		p.mu.Unlock()
		if !ok || p.reject.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(p.auth.Close)
	t.Cleanup(p.api.Close)
	return p
}

// revoke makes the API refuse the current token, as a rotation at the
// provider does.
func (p *provider) revoke() {
	p.mu.Lock()
	clear(p.valid)
	p.mu.Unlock()
}

func (p *provider) httpToken() *Token {
	t := &Token{ID: "shop", Type: TypeHTTP, Prefix: "Bearer ", TokenPath: "access_token", ExpiresInPath: "expires_in",
		Request: &AuthRequest{Method: "POST", URL: p.auth.URL + "/token",
			Params: map[string]Secret{"client_secret": "client-secret-42"}}}
	t.Normalize()
	return t
}

// call is an Attempt that calls the provider's API and records the
// statuses.
func (p *provider) call(statuses *[]int) Attempt {
	return func(ctx context.Context, cred Credential) int {
		req, _ := http.NewRequestWithContext(ctx, "GET", p.api.URL+"/orders", nil)
		cred.Sign(req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			*statuses = append(*statuses, 0)
			return 0
		}
		resp.Body.Close()
		*statuses = append(*statuses, resp.StatusCode)
		return resp.StatusCode
	}
}

// replicaSet is the token buckets of one installation and the
// Authenticators of its replicas.
type replicaSet struct {
	tokens, fetched jetstream.KeyValue
	store           *Store
}

func newReplicaSet(t *testing.T) *replicaSet {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	rs := &replicaSet{}
	var err error
	if rs.tokens, err = js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "tokens"}); err != nil {
		t.Fatal(err)
	}
	if rs.fetched, err = js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "fetched"}); err != nil {
		t.Fatal(err)
	}
	rs.store = NewStore(rs.tokens, nil)
	return rs
}

func (rs *replicaSet) put(t *testing.T, tok *Token) {
	t.Helper()
	if _, err := rs.store.Put(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
}

// replica starts one replica's Authenticator (its own store, manager and
// watches).
func (rs *replicaSet) replica(t *testing.T, opts ...ManagerOption) (*Authenticator, *Manager) {
	t.Helper()
	store := NewStore(rs.tokens, nil)
	mgr := NewManager(rs.fetched, NewFetcher(WithRetryWindow(10*time.Millisecond)), opts...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := store.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	return NewAuthenticator(store, mgr), mgr
}

func TestDoSignsWithTheTokenItNames(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	rs := newReplicaSet(t)
	rs.put(t, &Token{ID: "crm", Type: TypeText, Value: "key-text-secret", Header: "X-Api-Key"})
	rs.put(t, p.httpToken())
	a, _ := rs.replica(t)

	tests := []struct {
		name, tokenID string
		wantHeader    string // header and value the API saw
		wantFetched   bool
	}{
		{"no token", "", "", false},
		{"text token", "crm", "X-Api-Key: key-text-secret", false},
		{"http token, first use fetches", "shop", "Authorization: Bearer fetched-0001-secret", true},
		{"http token, then from memory", "shop", "Authorization: Bearer fetched-0001-secret", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var statuses []int
			out, err := a.Do(t.Context(), Ref{TokenID: tc.tokenID}, p.call(&statuses))
			if err != nil {
				t.Fatal(err)
			}
			p.mu.Lock()
			seen := p.lastAuth
			p.mu.Unlock()
			name, value, _ := strings.Cut(tc.wantHeader, ": ")
			switch {
			case tc.wantHeader == "" && (seen.Get("Authorization") != "" || seen.Get("X-Api-Key") != ""):
				t.Errorf("a call without a token was signed: %v", seen)
			case tc.wantHeader != "" && seen.Get(name) != value:
				t.Errorf("%s: %q, want %q", name, seen.Get(name), value)
			}
			if out.Attempts != 1 || out.Retried || (out.Fetched != nil) != tc.wantFetched || out.Refreshed != tc.wantFetched {
				t.Errorf("outcome %+v", out)
			}
			if out.Fetched != nil && (out.Fetched.Preview != "****cret" || out.Fetched.TokenID != "shop") {
				t.Errorf("fetched %+v: want the token masked", out.Fetched)
			}
		})
	}
}

func TestDoRefreshesOnceAfter401(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	rs := newReplicaSet(t)
	rs.put(t, p.httpToken())
	a, _ := rs.replica(t)
	var statuses []int
	if _, err := a.Do(t.Context(), Ref{TokenID: "shop"}, p.call(&statuses)); err != nil {
		t.Fatal(err)
	}

	p.revoke()
	statuses = nil
	out, err := a.Do(t.Context(), Ref{TokenID: "shop"}, p.call(&statuses))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(statuses) != "[401 200]" || out.Attempts != 2 || !out.Retried || !out.Refreshed || out.Fetched == nil {
		t.Errorf("after a revocation: statuses %v, outcome %+v; want 401 then 200 with one refresh", statuses, out)
	}

	// An API that refuses every token: called twice, the auth endpoint once.
	p.reject.Store(true)
	before := p.authCalls.Load()
	statuses = nil
	out, err = a.Do(t.Context(), Ref{TokenID: "shop"}, p.call(&statuses))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(statuses) != "[401 401]" || out.Attempts != 2 || !out.Retried || p.authCalls.Load()-before != 1 {
		t.Errorf("an API that always answers 401: statuses %v, outcome %+v, %d auth calls; want two attempts and one refresh",
			statuses, out, p.authCalls.Load()-before)
	}
}

// TestStampedeAcrossReplicas: many calls on three replicas answered 401 at
// once cost one auth request.
func TestStampedeAcrossReplicas(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.authDelay.Store(50)
	rs := newReplicaSet(t)
	rs.put(t, p.httpToken())
	var replicas []*Authenticator
	for i := range 3 {
		a, _ := rs.replica(t, WithHolder(fmt.Sprintf("replica-%d", i)))
		replicas = append(replicas, a)
	}
	var statuses []int
	if _, err := replicas[0].Do(t.Context(), Ref{TokenID: "shop"}, p.call(&statuses)); err != nil {
		t.Fatal(err)
	}
	// The other replicas use the shared token: read from KV on their first
	// call, with no auth request.
	fetches := p.authCalls.Load()
	for _, a := range replicas[1:] {
		out, err := a.Do(t.Context(), Ref{TokenID: "shop"}, p.call(&statuses))
		if err != nil || out.Refreshed || a.mgr.Peek("shop") == nil {
			t.Fatalf("first call on another replica: %+v %v", out, err)
		}
	}
	if p.authCalls.Load() != fetches {
		t.Fatalf("the other replicas fetched the token again: %d auth requests", p.authCalls.Load()-fetches)
	}

	p.revoke()
	before := p.authCalls.Load()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, a := range replicas {
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var st []int
				out, err := a.Do(context.Background(), Ref{TokenID: "shop"}, p.call(&st))
				if err != nil || st[len(st)-1] != 200 || out.Attempts > 2 {
					failed.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if n := p.authCalls.Load() - before; n != 1 || failed.Load() != 0 {
		t.Errorf("48 calls on 3 replicas after a revocation: %d auth requests (want 1), %d calls failed", n, failed.Load())
	}
}

// TestRefreshFailureEndsEveryWait: a refused refresh is a *RefreshError
// for the caller that made it and for the replicas waiting on it, without
// a second auth request and without a secret in the error.
func TestRefreshFailureEndsEveryWait(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	rs := newReplicaSet(t)
	rs.put(t, p.httpToken())
	p.authStatus.Store(http.StatusUnauthorized)
	p.authDelay.Store(300)
	a1, _ := rs.replica(t, WithHolder("one"))
	a2, _ := rs.replica(t, WithHolder("two"))
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, a := range []*Authenticator{a1, a2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st []int
			_, errs[i] = a.Do(context.Background(), Ref{TokenID: "shop"}, p.call(&st))
			if len(st) != 0 {
				t.Errorf("replica %d called the API without a token", i)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var rerr *RefreshError
		var aerr *AuthError
		if !errors.As(err, &rerr) || !errors.As(err, &aerr) || aerr.Status != 401 || rerr.TokenID != "shop" {
			t.Errorf("replica %d: %v, want a RefreshError with the auth endpoint's 401", i, err)
			continue
		}
		if strings.Contains(err.Error()+aerr.Body, "client-secret-42") {
			t.Errorf("replica %d: the error shows a secret: %v / %s", i, err, aerr.Body)
		}
	}
	if n := p.authCalls.Load(); n != 1 {
		t.Errorf("%d auth requests for two replicas waiting on one refresh, want 1", n)
	}
}

// TestBackgroundRefreshIsReportedToTheCaller: a token close to its expiry
// is refreshed in the background and the refresh is reported to the
// callback of the call that started it, while the call uses the current
// token.
func TestBackgroundRefreshIsReportedToTheCaller(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	p.expiresIn.Store(100)
	rs := newReplicaSet(t)
	rs.put(t, p.httpToken())
	clock := testclock.New(time.Now())
	store := NewStore(rs.tokens, nil)
	mgr := NewManager(rs.fetched, NewFetcher(WithClock(clock.Now)), WithManagerClock(clock.Now), WithExpiryMargin(10*time.Second))
	if err := store.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(store, mgr)
	var statuses []int
	if _, err := a.Do(t.Context(), Ref{TokenID: "shop"}, p.call(&statuses)); err != nil {
		t.Fatal(err)
	}
	first := mgr.Peek("shop")

	clock.Advance(85 * time.Second) // within twice the margin of the expiry, not within it
	reported := make(chan Refresh, 1)
	out, err := a.Do(t.Context(), Ref{TokenID: "shop", OnBackgroundRefresh: func(r Refresh) { reported <- r }}, p.call(&statuses))
	if err != nil || out.Refreshed || out.Fetched != nil {
		t.Fatalf("the call waited for the background refresh: %+v, %v", out, err)
	}
	select {
	case r := <-reported:
		if r.Err != nil || r.TokenID != "shop" || r.Revision <= first.Revision || r.Preview != "****cret" {
			t.Errorf("reported %+v, want the new token's revision after %d", r, first.Revision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the background refresh was not reported")
	}
	if p.authCalls.Load() != 2 {
		t.Errorf("%d auth requests, want 2", p.authCalls.Load())
	}
}

func TestDoErrors(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	rs := newReplicaSet(t)
	a, _ := rs.replica(t)
	weird, _ := json.Marshal(map[string]string{"id": "weird", "type": "carrier-pigeon", "header": "Authorization"})
	if _, err := rs.tokens.Put(t.Context(), "weird", weird); err != nil {
		t.Fatal(err)
	}
	sealed, _ := NewSealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", nil)
	if _, err := NewStore(rs.tokens, sealed).Put(t.Context(), &Token{ID: "locked", Type: TypeText, Value: "v-123456", Header: "Authorization"}); err != nil {
		t.Fatal(err)
	}
	blocked := p.httpToken()
	blocked.ID = "blocked"
	blocked.Request.URL = "http://127.0.0.1:1/token"
	rs.put(t, blocked)
	waitFor(t, func() bool { _, err := a.store.Get(t.Context(), "blocked"); return err == nil })

	for _, tc := range []struct {
		id   string
		want error
	}{
		{"nope", ErrTokenNotFound},
		{"weird", ErrUnsupportedType},
		{"locked", ErrTokenUnreadable},
	} {
		var statuses []int
		_, err := a.Do(t.Context(), Ref{TokenID: tc.id}, p.call(&statuses))
		if !errors.Is(err, tc.want) || len(statuses) != 0 {
			t.Errorf("token %s: %v after %d calls, want %v and no call", tc.id, err, len(statuses), tc.want)
		}
	}
	var statuses []int
	_, err := a.Do(t.Context(), Ref{TokenID: "blocked"}, p.call(&statuses))
	var rerr *RefreshError
	if !errors.As(err, &rerr) || len(statuses) != 0 {
		t.Errorf("an unreachable auth endpoint: %v, want a RefreshError", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCredentialNamesItsHeaderAndRedactsItsSecrets: what the consumer
// needs of a credential without seeing its value: the header to drop on a
// cross-host redirect, and the redaction of an echo of the token.
func TestCredentialNamesItsHeaderAndRedactsItsSecrets(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	rs := newReplicaSet(t)
	rs.put(t, &Token{ID: "crm", Type: TypeText, Value: "key-text-secret", Header: "X-Api-Key"})
	rs.put(t, p.httpToken())
	a, _ := rs.replica(t)
	for _, tc := range []struct{ id, header, secret string }{
		{"", "", ""},
		{"crm", "X-Api-Key", "key-text-secret"},
		{"shop", "Authorization", "fetched-0001-secret"},
	} {
		var cred Credential
		if _, err := a.Do(t.Context(), Ref{TokenID: tc.id}, func(_ context.Context, c Credential) int { cred = c; return 200 }); err != nil {
			t.Fatal(err)
		}
		if cred.Header() != tc.header || cred.Redacts() != (tc.id != "") {
			t.Errorf("token %q: header %q, redacts %v", tc.id, cred.Header(), cred.Redacts())
		}
		echo := `{"echo":"Bearer ` + tc.secret + `","client_secret":"client-secret-42"}`
		got := cred.Redact(echo)
		if tc.secret != "" && (strings.Contains(got, tc.secret) || !strings.Contains(got, "****")) {
			t.Errorf("token %q: redacted %s", tc.id, got)
		}
		if !strings.Contains(got, `"client_secret":"client-secret-42"`) {
			t.Errorf("a value that is not the token was changed: %s", got)
		}
	}
}
