package auth

import (
	"context"
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
	"customactions/internal/oauthtest"
)

// oauthEnv is a token store, a fetched-token bucket and a way to make
// replicas over them.
type oauthEnv struct {
	t       *testing.T
	js      jetstream.JetStream
	tokens  *Store
	fetched jetstream.KeyValue
}

func newOAuthEnv(t *testing.T) *oauthEnv {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	mk := func(bucket string) jetstream.KeyValue {
		kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: bucket, Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}
	sealer, err := NewSealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &oauthEnv{t: t, js: js, tokens: NewStore(mk("tokens"), sealer), fetched: mk("fetched")}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.tokens.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// replica is one process: a Manager with its own holder over the shared
// buckets, its watch running, and an Authenticator.
type replica struct {
	mgr    *Manager
	auth   *Authenticator
	health []HealthChange
	mu     sync.Mutex
}

// stored reads the connection record of id from the bucket.
func (r *replica) stored(t *testing.T, id string) *oauthConn {
	t.Helper()
	c, err := r.mgr.readOAuth(t.Context(), id)
	if err != nil || c == nil {
		t.Fatalf("read the record of %s: %v, %v", id, c, err)
	}
	return c
}

func (e *oauthEnv) replica(name string, client *http.Client, opts ...ManagerOption) *replica {
	e.t.Helper()
	if client == nil {
		client = &http.Client{}
	}
	sealer, _ := NewSealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", nil)
	mgr := NewManager(e.fetched, NewFetcher(WithHTTPClient(client), WithRetryWindow(time.Second)),
		append([]ManagerOption{WithHolder(name), WithSealer(sealer)}, opts...)...)
	r := &replica{mgr: mgr, auth: NewAuthenticator(e.tokens, mgr)}
	mgr.OnHealthChange(func(c HealthChange) {
		r.mu.Lock()
		r.health = append(r.health, c)
		r.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	if err := mgr.Watch(ctx); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (r *replica) changes() []HealthChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]HealthChange(nil), r.health...)
}

// save is what admin.SaveToken does with an oauth2 token.
func (e *oauthEnv) save(r *replica, tok *Token) (Health, error) {
	e.t.Helper()
	tok.Normalize()
	if err := tok.Validate(); err != nil {
		e.t.Fatal(err)
	}
	h, err := r.mgr.SaveOAuth2(e.t.Context(), tok)
	if err != nil {
		return h, err
	}
	if _, err := e.tokens.Put(e.t.Context(), tok); err != nil {
		e.t.Fatal(err)
	}
	return h, nil
}

func oauthToken(srv *oauthtest.Server, grant, refresh string) *Token {
	return &Token{ID: "crm", Type: TypeOAuth2, Prefix: "Bearer ", OAuth2: &OAuth2{Grant: grant, TokenURL: srv.TokenURL,
		ClientID: srv.ClientID, ClientSecret: Secret(srv.ClientSecret), RefreshToken: Secret(refresh)}}
}

// api is an action that accepts the access tokens the server says are
// valid.
type api struct {
	*httptest.Server
	calls, refused atomic.Int64
}

func newAPI(t *testing.T, srv *oauthtest.Server) *api {
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !srv.Valid(r.Context(), at) {
			a.refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(a.Close)
	return a
}

// call makes one call of the API through r.
func (a *api) call(ctx context.Context, r *replica, id string) (int, CallOutcome, error) {
	status := 0
	out, err := r.auth.Do(ctx, Ref{TokenID: id}, func(ctx context.Context, cred Credential) int {
		req, _ := http.NewRequestWithContext(ctx, "GET", a.URL, nil)
		cred.Sign(req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			status = 0
			return 0
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status
	})
	return status, out, err
}

func TestOAuth2ClientCredentials(t *testing.T) {
	for _, auth := range []string{ClientAuthBasic, ClientAuthBody} {
		t.Run(auth, func(t *testing.T) {
			srv := oauthtest.New(t, oauthtest.Options{})
			e := newOAuthEnv(t)
			r := e.replica("r1", nil)
			tok := oauthToken(srv, GrantClientCredentials, "")
			tok.OAuth2.ClientAuth, tok.OAuth2.Scopes = auth, []string{"api", "read"}
			tok.OAuth2.ExtraParams = map[string]string{"audience": "crm", "tenant": "t-42"}
			if h, err := e.save(r, tok); err != nil || h.Status != HealthOK {
				t.Fatalf("save: %+v, %v", h, err)
			}
			a := newAPI(t, srv)
			for range 3 {
				if status, _, err := a.call(t.Context(), r, "crm"); err != nil || status != 200 {
					t.Fatalf("call: %d, %v", status, err)
				}
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d token requests, want 1 (the test-before-save; its token is used)", len(reqs))
			}
			q := reqs[0]
			if q.Form.Get("grant_type") != "client_credentials" || q.Form.Get("scope") != "api read" ||
				q.Form.Get("audience") != "crm" || q.Form.Get("tenant") != "t-42" || q.Status != 200 {
				t.Errorf("token request %v (status %d): want grant, scope and extra params", q.Form, q.Status)
			}
			basic := q.BasicUser == srv.ClientID && q.Form.Get("client_secret") == ""
			body := q.BasicUser == "" && q.Form.Get("client_secret") == srv.ClientSecret && q.Form.Get("client_id") == srv.ClientID
			if (auth == ClientAuthBasic && !basic) || (auth == ClientAuthBody && !body) {
				t.Errorf("client auth %s: basic user %q, form %v", auth, q.BasicUser, q.Form)
			}
		})
	}
}

func TestOAuth2ClientCredentialsRefusedSecretIsMasked(t *testing.T) {
	srv := oauthtest.New(t, oauthtest.Options{})
	e := newOAuthEnv(t)
	r := e.replica("r1", nil)
	tok := oauthToken(srv, GrantClientCredentials, "")
	tok.OAuth2.ClientSecret = "a-wrong-secret-0123456789"
	_, err := e.save(r, tok)
	if !errors.Is(err, ErrTestFailed) || strings.Contains(err.Error(), "a-wrong-secret") {
		t.Fatalf("save with a wrong secret: %v, want ErrTestFailed without the secret", err)
	}
	if !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("error %q does not say invalid_client", err)
	}
}

// TestOAuth2RotationUnderLoad: 3 replicas x 32 workers call an API whose
// access tokens expire every 2 s. Every call succeeds; the server never
// sees a refresh token twice; each refresh is one rotation.
func TestOAuth2RotationUnderLoad(t *testing.T) {
	dur := 20 * time.Second
	if testing.Short() {
		dur = 4 * time.Second
	}
	srv := oauthtest.New(t, oauthtest.Options{AccessTokenLifespan: 2 * time.Second})
	e := newOAuthEnv(t)
	reps := []*replica{e.replica("r1", nil), e.replica("r2", nil), e.replica("r3", nil)}
	if _, err := e.save(reps[0], oauthToken(srv, GrantRefreshToken, srv.MintRefreshToken(t))); err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, srv)
	start := srv.RefreshCalls()
	genBefore := reps[0].stored(t, "crm").Gen

	var calls, failed, retried atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	stop := time.Now().Add(dur)
	for _, r := range reps {
		for range 32 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					status, out, err := a.call(ctx, r, "crm")
					cancel()
					calls.Add(1)
					if out.Retried {
						retried.Add(1)
					}
					if err != nil || status != 200 {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d, err %v", status, err))
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
	}
	wg.Wait()
	// Proactive refreshes outlive the calls that started them.
	for _, r := range reps {
		if err := r.mgr.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	refreshes := srv.RefreshCalls() - start
	// The record in KV, not a replica's cached copy: the last refresh may
	// be another replica's, and the watch that brings it here can lag.
	gen := reps[0].stored(t, "crm").Gen
	t.Logf("%d calls (%d retried after a 401), %d refreshes, %d API refusals", calls.Load(), retried.Load(), refreshes, a.refused.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d calls failed; first: %v", failed.Load(), calls.Load(), firstErr.Load())
	}
	if n := srv.ReusedRefreshTokens(); n != 0 {
		t.Errorf("the server saw a refresh token again %d times", n)
	}
	if n := srv.FamiliesRevoked(); n != 0 {
		t.Errorf("%d token families revoked", n)
	}
	if refreshes < int64(dur/(2*time.Second)) {
		t.Errorf("%d refreshes in %s of 2 s access tokens: too few", refreshes, dur)
	}
	if srv.Rotations()-start != refreshes || gen-genBefore != uint64(refreshes) {
		t.Errorf("refreshes %d, rotations %d, new access tokens stored %d: want all equal", refreshes, srv.Rotations()-start, gen-genBefore)
	}
	for _, r := range reps {
		for _, c := range r.changes() {
			if c.From != "" {
				t.Errorf("health changed under load: %+v", c)
			}
		}
	}
}

// frozenEndpoint forwards token requests to the server and then holds the
// answer, as a holder that was killed or froze while its request was at
// the token endpoint: it never returns until released.
type frozenEndpoint struct {
	sent    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (f *frozenEndpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	f.once.Do(func() { close(f.sent) })
	<-f.release
	return resp, err
}

func TestOAuth2HolderDiesAfterSendingRefreshToken(t *testing.T) {
	srv := oauthtest.New(t, oauthtest.Options{AccessTokenLifespan: 2 * time.Second})
	e := newOAuthEnv(t)
	frozen := &frozenEndpoint{sent: make(chan struct{}), release: make(chan struct{})}
	ttl := WithLeaseTTL(time.Second)
	dying := e.replica("dying", &http.Client{Transport: frozen}, ttl)
	r2, r3 := e.replica("r2", nil, ttl), e.replica("r3", nil, ttl)
	if _, err := e.save(r2, oauthToken(srv, GrantRefreshToken, srv.MintRefreshToken(t))); err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, srv)
	c := r2.mgr.cachedOAuth("crm")

	// The dying replica refreshes: its request reaches the server, which
	// rotates the refresh token, and the answer never comes back.
	tok, err := e.tokens.Get(t.Context(), "crm")
	if err != nil {
		t.Fatal(err)
	}
	dyingDone := make(chan error, 1)
	go func() {
		_, _, err := dying.mgr.oauthObtain(context.Background(), workspace(tok), c.Gen)
		dyingDone <- err
	}()
	<-frozen.sent
	callsAtDeath := srv.TokenCalls()

	// The others need a new token: the intent lapses, and they must not
	// send the refresh token again.
	var wg sync.WaitGroup
	for _, r := range []*replica{r2, r3} {
		for range 4 {
			wg.Go(func() {
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) {
					_, _, err := r.mgr.oauthObtain(t.Context(), workspace(tok), c.Gen)
					if errors.Is(err, ErrReauthorizationRequired) {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				t.Error("no reauthorization_required within 10 s")
			})
		}
	}
	wg.Wait()
	apiCalls := a.calls.Load()
	for range 20 {
		_, _, err := a.call(t.Context(), r3, "crm")
		if !errors.Is(err, ErrReauthorizationRequired) || !strings.Contains(err.Error(), "interrupted after the refresh token was sent") {
			t.Fatalf("call after the interrupted refresh: %v", err)
		}
	}
	if a.calls.Load() != apiCalls {
		t.Errorf("the API was called while the token needs reauthorization")
	}
	if n := srv.TokenCalls(); n != callsAtDeath {
		t.Errorf("%d token requests after the holder died, want none", n-callsAtDeath)
	}
	changes := append(r2.changes(), r3.changes()...)
	if len(changes) != 2 || changes[0].To != HealthOK || changes[1].To != HealthReauthorizationRequired {
		t.Errorf("health changes %+v: want the save (ok) and one reauthorization_required", changes)
	}

	// The frozen holder wakes with the rotated tokens: its lease lapsed and
	// the record moved on, so it writes nothing.
	close(frozen.release)
	if err := <-dyingDone; err == nil {
		t.Fatal("the lapsed holder's refresh succeeded")
	}
	if h := r3.mgr.cachedOAuth("crm").Health; h.Status != HealthReauthorizationRequired {
		t.Errorf("after the lapsed holder woke: %+v", h)
	}
	if len(dying.changes()) != 0 {
		t.Errorf("the lapsed holder reported %+v", dying.changes())
	}
	if srv.ReusedRefreshTokens() != 0 || srv.FamiliesRevoked() != 0 {
		t.Errorf("refresh token reused %d times, %d families revoked", srv.ReusedRefreshTokens(), srv.FamiliesRevoked())
	}
}

// TestOAuth2WaitForRefreshes: Wait returns only once a refresh under way
// has written its outcome, and with the context's error while it has not.
func TestOAuth2WaitForRefreshes(t *testing.T) {
	srv := oauthtest.New(t, oauthtest.Options{AccessTokenLifespan: time.Hour})
	e := newOAuthEnv(t)
	slow := &frozenEndpoint{sent: make(chan struct{}), release: make(chan struct{})}
	r1, r2 := e.replica("r1", nil), e.replica("r2", &http.Client{Transport: slow})
	if _, err := e.save(r1, oauthToken(srv, GrantRefreshToken, srv.MintRefreshToken(t))); err != nil {
		t.Fatal(err)
	}
	if err := r2.mgr.Wait(t.Context()); err != nil {
		t.Fatalf("Wait with no refresh under way: %v", err)
	}
	tok, err := e.tokens.Get(t.Context(), "crm")
	if err != nil {
		t.Fatal(err)
	}
	before := r1.stored(t, "crm").Gen
	// A caller that gives up at once: the refresh it started goes on.
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-slow.sent; cancel() }()
	_, _, _ = r2.mgr.oauthObtain(ctx, workspace(tok), before)
	short, cancelShort := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancelShort()
	if err := r2.mgr.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait while the refresh is held at the endpoint: %v, want the deadline", err)
	}
	close(slow.release)
	if err := r2.mgr.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := r1.stored(t, "crm"); c.Gen != before+1 || c.Health.Status != HealthOK {
		t.Errorf("after Wait: generation %d (want %d), health %+v", c.Gen, before+1, c.Health)
	}
}

func TestOAuth2InvalidGrantThenSavedAgain(t *testing.T) {
	srv := oauthtest.New(t, oauthtest.Options{AccessTokenLifespan: time.Hour})
	e := newOAuthEnv(t)
	r1, r2 := e.replica("r1", nil), e.replica("r2", nil)
	if _, err := e.save(r1, oauthToken(srv, GrantRefreshToken, srv.MintRefreshToken(t))); err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, srv)
	if status, _, err := a.call(t.Context(), r2, "crm"); status != 200 || err != nil {
		t.Fatalf("first call: %d, %v", status, err)
	}
	// The user revokes the app: the access token is refused, and so is the
	// refresh.
	srv.RevokeAll()
	tok, _ := e.tokens.Get(t.Context(), "crm")
	c := r2.mgr.cachedOAuth("crm")
	_, _, err := r2.mgr.oauthObtain(t.Context(), workspace(tok), c.Gen)
	if !errors.Is(err, ErrReauthorizationRequired) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after revocation: %v", err)
	}
	// Every replica learns it from the shared record: the watch drops what
	// it held, and its next call reads the record.
	waitFor(t, func() bool {
		c := r1.mgr.cachedOAuth("crm")
		return c == nil || c.Health.Status == HealthReauthorizationRequired
	})
	tokenCalls, apiCalls := srv.TokenCalls(), a.calls.Load()
	for _, r := range []*replica{r1, r2} {
		for range 10 {
			if _, _, err := a.call(t.Context(), r, "crm"); !errors.Is(err, ErrReauthorizationRequired) {
				t.Fatalf("call while reauthorization is required: %v", err)
			}
		}
	}
	if srv.TokenCalls() != tokenCalls || a.calls.Load() != apiCalls {
		t.Errorf("calls while reauthorization is required: %d token requests, %d API calls; want none",
			srv.TokenCalls()-tokenCalls, a.calls.Load()-apiCalls)
	}
	want := []HealthChange{{From: HealthOK, To: HealthReauthorizationRequired}}
	if got := append(r1.changes()[1:], r2.changes()...); !sameChanges(got, want) {
		t.Errorf("health changes %+v, want %+v", got, want)
	}

	// An admin pastes a new refresh token: the token recovers.
	if h, err := e.save(r1, oauthToken(srv, GrantRefreshToken, srv.MintRefreshToken(t))); err != nil || h.Status != HealthOK {
		t.Fatalf("save again: %+v, %v", h, err)
	}
	if got := r1.changes(); got[len(got)-1].From != HealthReauthorizationRequired || got[len(got)-1].To != HealthOK {
		t.Errorf("health changes %+v: want a recovery last", got)
	}
	waitFor(t, func() bool { c := r2.mgr.cachedOAuth("crm"); return c == nil || c.Health.Status == HealthOK })
	if status, _, err := a.call(t.Context(), r2, "crm"); status != 200 || err != nil {
		t.Fatalf("call after saving again: %d, %v", status, err)
	}
}

func sameChanges(got, want []HealthChange) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].From != want[i].From || got[i].To != want[i].To {
			return false
		}
	}
	return true
}
