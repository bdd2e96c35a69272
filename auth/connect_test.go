package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/oauthtest"
)

// connectEnv is an oauthEnv with the connections and states buckets, and
// replicas that each serve connect links on their own HTTP server.
type connectEnv struct {
	*oauthEnv
	srv         *oauthtest.Server
	users       jetstream.KeyValue
	states      jetstream.KeyValue
	clock       *stepClock
	subjectsMu  sync.Mutex
	subjectSeen []string // the subject of each access token the API accepted
	api         *httptest.Server
}

// stepClock is a clock that tests move forward.
type stepClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func newConnectEnv(t *testing.T, opts ...oauthtest.Options) *connectEnv {
	t.Helper()
	o := oauthtest.Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	e := &connectEnv{oauthEnv: newOAuthEnv(t), srv: oauthtest.New(t, o), clock: &stepClock{}}
	js := e.js
	for _, b := range []struct {
		dst  *jetstream.KeyValue
		name string
	}{{&e.users, "connections"}, {&e.states, "states"}} {
		kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: b.name, Storage: jetstream.FileStorage, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		*b.dst = kv
	}
	// The action: it accepts an access token the provider issued and
	// records whose it is.
	e.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sub, ok := e.srv.Subject(r.Context(), at)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		e.subjectsMu.Lock()
		e.subjectSeen = append(e.subjectSeen, sub)
		e.subjectsMu.Unlock()
		_, _ = w.Write([]byte(sub))
	}))
	t.Cleanup(e.api.Close)
	return e
}

// connReplica is a replica with a Connector whose links are served by its
// own HTTP server (the public URL).
type connReplica struct {
	*replica
	conn *Connector
	web  *httptest.Server
}

func (e *connectEnv) replica(t *testing.T, name string) *connReplica {
	t.Helper()
	r := &connReplica{}
	r.web = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		state, ok := strings.CutPrefix(req.URL.Path, ConnectPath)
		if !ok {
			http.NotFound(w, req)
			return
		}
		to, err := r.conn.AuthorizeURL(req.Context(), state)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, req, to, http.StatusFound)
	}))
	t.Cleanup(r.web.Close)
	r.replica = e.oauthEnv.replica(name, nil, WithConnections(e.users, 0), WithManagerClock(e.clock.now))
	c, err := NewConnector(e.tokens, r.mgr, e.states, ConnectConfig{PublicURL: r.web.URL, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	r.conn = c
	r.mgr.SetConnector(c)
	e.srv.AllowRedirectURI(c.RedirectURI())
	return r
}

func (e *connectEnv) perUserToken(t *testing.T, r *connReplica) *Token {
	t.Helper()
	tok := &Token{ID: "crm", Type: TypeOAuth2, Prefix: "Bearer ", OAuth2: &OAuth2{Grant: GrantAuthorizationCode, PerEndUser: true,
		AuthorizeURL: e.srv.AuthorizeURL, TokenURL: e.srv.TokenURL, RevokeURL: e.srv.RevokeURL,
		ClientID: e.srv.ClientID, ClientSecret: Secret(e.srv.ClientSecret), Scopes: []string{"api", "offline_access"}}}
	if _, err := e.save(r.replica, tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// call runs one call for endUser through r; it returns the subject the
// API saw ("" when it made no call) and Do's error.
func (e *connectEnv) call(t *testing.T, r *connReplica, endUser string) (string, error) {
	t.Helper()
	var sub string
	_, err := r.auth.Do(t.Context(), Ref{TokenID: "crm", EndUserID: endUser, TriggerID: "trg-" + endUser, ActionID: "orders"},
		func(ctx context.Context, cred Credential) int {
			req, _ := http.NewRequestWithContext(ctx, "GET", e.api.URL, nil)
			cred.Sign(req.Header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			defer resp.Body.Close()
			var b strings.Builder
			buf := make([]byte, 256)
			n, _ := resp.Body.Read(buf)
			b.Write(buf[:n])
			if resp.StatusCode == http.StatusOK {
				sub = b.String()
			}
			return resp.StatusCode
		})
	return sub, err
}

// mustAuthorize asks for a call that must answer authorization_required
// and returns its link.
func (e *connectEnv) mustAuthorize(t *testing.T, r *connReplica, endUser string) string {
	t.Helper()
	sub, err := e.call(t, r, endUser)
	var areq *AuthorizationRequiredError
	if !errors.As(err, &areq) || sub != "" {
		t.Fatalf("call for %s: subject %q, err %v; want authorization required and no call", endUser, sub, err)
	}
	if areq.EndUserID != endUser || areq.TokenID != "crm" || !strings.HasPrefix(areq.URL, r.web.URL+ConnectPath) {
		t.Fatalf("authorization required = %+v", areq)
	}
	return areq.URL
}

func TestConnectEndUsersActAsThemselves(t *testing.T) {
	e := newConnectEnv(t)
	r1, r2 := e.replica(t, "r1"), e.replica(t, "r2")
	e.perUserToken(t, r1)
	var connected []Connected
	var mu sync.Mutex
	for _, r := range []*connReplica{r1, r2} {
		r.conn.OnConnected(func(c Connected) { mu.Lock(); connected = append(connected, c); mu.Unlock() })
	}

	if _, err := e.call(t, r1, ""); !errors.Is(err, ErrEndUserRequired) {
		t.Fatalf("call without end user: %v, want ErrEndUserRequired", err)
	}
	// Replica 1 answers the trigger, replica 2 serves the link and the
	// callback, for two end users who log in as two people.
	for _, u := range []struct{ endUser, person string }{{"contact_a", "alice"}, {"contact_b", "bob"}} {
		link := e.mustAuthorize(t, r1, u.endUser)
		link = strings.Replace(link, r1.web.URL, r2.web.URL, 1)
		back := e.srv.Login(t, link, u.person, u.person+"-password")
		if back.Query().Get("code") == "" {
			t.Fatalf("provider answered %s", back)
		}
		done, err := r2.conn.Complete(t.Context(), back.Query())
		if err != nil {
			t.Fatalf("callback for %s: %v", u.endUser, err)
		}
		if done.EndUserID != u.endUser || done.TriggerID != "trg-"+u.endUser || done.ActionID != "orders" || done.Health.Status != HealthOK {
			t.Fatalf("connected = %+v", done)
		}
	}
	if e.srv.CodeExchanges() != 2 {
		t.Fatalf("code exchanges = %d, want 2", e.srv.CodeExchanges())
	}
	// Each end user's calls carry their own access token, on both replicas.
	for _, r := range []*connReplica{r1, r2} {
		for _, u := range []struct{ endUser, person string }{{"contact_a", "alice"}, {"contact_b", "bob"}} {
			for range 3 {
				sub, err := e.call(t, r, u.endUser)
				if err != nil || sub != u.person {
					t.Fatalf("call for %s on %s: API saw %q, err %v; want %s", u.endUser, r.mgr.holder, sub, err, u.person)
				}
			}
		}
	}
	mu.Lock()
	if len(connected) != 2 {
		t.Fatalf("connected events = %d, want 2", len(connected))
	}
	mu.Unlock()

	list, more, err := r1.mgr.Connections(t.Context(), "crm", "", 10)
	if err != nil || more || len(list) != 2 {
		t.Fatalf("connections = %+v more=%v err=%v", list, more, err)
	}
	for _, c := range list {
		if c.Status != HealthOK || !strings.HasPrefix(c.AccessTokenPreview, "****") || c.Unreadable {
			t.Fatalf("connection view %+v", c)
		}
	}
	if page, more, _ := r1.mgr.Connections(t.Context(), "crm", "", 1); len(page) != 1 || !more {
		t.Fatalf("limit 1: %d connections, more %v", len(page), more)
	}
	// Raw records hold no secret in the clear.
	raw, err := e.users.Get(t.Context(), "crm.contact_a")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw.Value()), `"access_token":"ory_at`) || !strings.Contains(string(raw.Value()), "enc:v1:") {
		t.Fatalf("stored connection is not sealed: %s", raw.Value())
	}
}

func TestConnectStateIsSingleUseBoundAndExpires(t *testing.T) {
	e := newConnectEnv(t)
	r1, r2 := e.replica(t, "r1"), e.replica(t, "r2")
	e.perUserToken(t, r1)
	kind := func(err error) string {
		var ce *ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v is not a *ConnectError", err)
		}
		return ce.Kind
	}
	stored := func(user string) bool {
		_, err := e.users.Get(t.Context(), "crm."+user)
		return err == nil
	}

	// Replay: the second callback with the same state (on another
	// replica) is refused.
	back := e.srv.Login(t, e.mustAuthorize(t, r1, "u1"), "alice", "alice-password")
	if _, err := r1.conn.Complete(t.Context(), back.Query()); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.conn.Complete(t.Context(), back.Query()); kind(err) != ConnectLinkUsed {
		t.Fatalf("replayed callback: %v", err)
	}
	if _, err := r2.conn.AuthorizeURL(t.Context(), back.Query().Get("state")); kind(err) != ConnectLinkUsed {
		t.Fatalf("used link opened again: %v", err)
	}

	// Tampering: a state that was never issued.
	link := e.mustAuthorize(t, r1, "u2")
	state := strings.TrimPrefix(link, r1.web.URL+ConnectPath)
	tampered := state[:len(state)-1] + string("ABCDEFGH"[(strings.IndexByte("ABCDEFGH", state[len(state)-1])+1)%8])
	if _, err := r1.conn.AuthorizeURL(t.Context(), tampered); kind(err) != ConnectInvalidLink {
		t.Fatalf("tampered link: %v", err)
	}
	if _, err := r1.conn.Complete(t.Context(), url.Values{"state": {tampered}, "code": {"x"}}); kind(err) != ConnectInvalidLink {
		t.Fatalf("tampered callback: %v", err)
	}
	if _, err := r1.conn.Complete(t.Context(), url.Values{"code": {"x"}}); kind(err) != ConnectInvalidLink {
		t.Fatalf("callback without state: %v", err)
	}

	// The user says no: nothing is stored, the state is spent.
	denied := e.srv.Deny(t, link)
	if denied.Query().Get("error") != "access_denied" {
		t.Fatalf("deny answered %s", denied)
	}
	if _, err := r2.conn.Complete(t.Context(), denied.Query()); kind(err) != ConnectAccessDenied {
		t.Fatalf("denied callback: %v", err)
	}
	if stored("u2") {
		t.Fatal("a denied connection was stored")
	}

	// A callback without code.
	link = e.mustAuthorize(t, r1, "u3")
	state = strings.TrimPrefix(link, r1.web.URL+ConnectPath)
	if _, err := r1.conn.Complete(t.Context(), url.Values{"state": {state}}); kind(err) != ConnectMissingCode {
		t.Fatalf("callback without code: %v", err)
	}
	if stored("u3") {
		t.Fatal("a connection without code was stored")
	}

	// Expiry: after the TTL the link and its callback are refused, even
	// with a code the provider issued before.
	link = e.mustAuthorize(t, r1, "u4")
	back = e.srv.Login(t, link, "bob", "bob-password")
	e.clock.advance(DefaultConnectTTL + time.Second)
	if _, err := r2.conn.Complete(t.Context(), back.Query()); kind(err) != ConnectLinkExpired {
		t.Fatalf("expired callback: %v", err)
	}
	if _, err := r2.conn.AuthorizeURL(t.Context(), strings.TrimPrefix(link, r1.web.URL+ConnectPath)); kind(err) != ConnectLinkUsed && kind(err) != ConnectLinkExpired {
		t.Fatalf("expired link: %v", err)
	}
	if stored("u4") {
		t.Fatal("an expired link stored a connection")
	}

	// A code the provider issued for one link cannot complete another
	// link: the verifier of the other link does not match the challenge.
	e.clock.advance(-DefaultConnectTTL - time.Second)
	l1, l2 := e.mustAuthorize(t, r1, "u5"), e.mustAuthorize(t, r1, "u6")
	code1 := e.srv.Login(t, l1, "alice", "alice-password").Query().Get("code")
	q := url.Values{"state": {strings.TrimPrefix(l2, r1.web.URL+ConnectPath)}, "code": {code1}}
	if _, err := r1.conn.Complete(t.Context(), q); kind(err) != ConnectExchangeFailed {
		t.Fatalf("code of another link: %v", err)
	}
	if stored("u5") || stored("u6") {
		t.Fatal("a code swapped between links stored a connection")
	}
}

// revokeAtProvider revokes a refresh token (and its access tokens) as a
// user who removes the app at the provider does.
func (e *connectEnv) revokeAtProvider(t *testing.T, refresh Secret) {
	t.Helper()
	form := url.Values{"token": {refresh.Reveal()}, "token_type_hint": {"refresh_token"}}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.srv.RevokeURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.srv.ClientID, e.srv.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
}

func TestConnectRevokedConnectionAsksAgain(t *testing.T) {
	e := newConnectEnv(t)
	r1 := e.replica(t, "r1")
	tok := e.perUserToken(t, r1)
	back := e.srv.Login(t, e.mustAuthorize(t, r1, "u1"), "alice", "alice-password")
	if _, err := r1.conn.Complete(t.Context(), back.Query()); err != nil {
		t.Fatal(err)
	}
	if sub, err := e.call(t, r1, "u1"); sub != "alice" || err != nil {
		t.Fatalf("call: %q %v", sub, err)
	}
	// The user revokes the app: the access token is refused, the refresh
	// is answered invalid_grant, and the next call asks to connect again.
	e.revokeAtProvider(t, r1.mgr.cachedOAuth("crm.u1").Refresh)
	if sub, err := e.call(t, r1, "u1"); sub != "" || err == nil {
		t.Fatalf("call after revocation: %q %v", sub, err)
	}
	list, _, _ := r1.mgr.Connections(t.Context(), "crm", "u1", 1)
	if len(list) != 1 || list[0].Status != HealthReauthorizationRequired {
		t.Fatalf("connection after revocation: %+v", list)
	}
	link := e.mustAuthorize(t, r1, "u1")
	back = e.srv.Login(t, link, "alice", "alice-password")
	if _, err := r1.conn.Complete(t.Context(), back.Query()); err != nil {
		t.Fatal(err)
	}
	if sub, err := e.call(t, r1, "u1"); sub != "alice" || err != nil {
		t.Fatalf("call after reconnecting: %q %v", sub, err)
	}

	// Deleting revokes at revoke_url and removes the record.
	revocations := e.srv.Revocations()
	d, err := r1.mgr.DeleteConnection(t.Context(), tok, "u1")
	if err != nil || !d.Found || !d.Revoked {
		t.Fatalf("delete: %+v %v", d, err)
	}
	if e.srv.Revocations() != revocations+1 {
		t.Fatalf("revocations = %d, want %d", e.srv.Revocations(), revocations+1)
	}
	e.mustAuthorize(t, r1, "u1")
	if n, err := r1.mgr.DeleteConnections(t.Context(), "crm"); err != nil || n != 0 {
		t.Fatalf("delete all: %d %v", n, err)
	}
}

// TestConnectUserRefreshIsFencedAcrossReplicas: an end user's connection
// rotates like a workspace one: with 2 s access tokens, three replicas
// calling for two users at once refresh each rotation once, and no refresh
// token reaches the provider twice.
func TestConnectUserRefreshIsFencedAcrossReplicas(t *testing.T) {
	e := newConnectEnv(t, oauthtest.Options{AccessTokenLifespan: 2 * time.Second})
	reps := []*connReplica{e.replica(t, "r1"), e.replica(t, "r2"), e.replica(t, "r3")}
	e.perUserToken(t, reps[0])
	people := map[string]string{"u1": "alice", "u2": "bob"}
	for user, person := range people {
		back := e.srv.Login(t, e.mustAuthorize(t, reps[0], user), person, person+"-password")
		if _, err := reps[1].conn.Complete(t.Context(), back.Query()); err != nil {
			t.Fatalf("%v: %v", err, errors.Unwrap(err))
		}
	}
	stop := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for _, r := range reps {
		for user, person := range people {
			for range 4 {
				wg.Go(func() {
					for time.Now().Before(stop) {
						sub, err := e.call(t, r, user)
						if err != nil || sub != person {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("%s on %s: %q %v", user, r.mgr.holder, sub, err))
							mu.Unlock()
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				})
			}
		}
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failed calls, first: %s", len(failures), failures[0])
	}
	// Proactive refreshes outlive the calls that started them.
	for _, r := range reps {
		if err := r.mgr.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("refreshes %d, rotations %d, token requests %d", e.srv.RefreshCalls(), e.srv.Rotations(), e.srv.TokenCalls())
	if e.srv.ReusedRefreshTokens() != 0 || e.srv.FamiliesRevoked() != 0 {
		t.Fatalf("refresh tokens reused %d times, families revoked %d", e.srv.ReusedRefreshTokens(), e.srv.FamiliesRevoked())
	}
	if e.srv.RefreshCalls() < 2 || e.srv.RefreshCalls() != e.srv.Rotations() {
		t.Fatalf("refreshes %d, rotations %d: want at least one per user, each answered with a rotation", e.srv.RefreshCalls(), e.srv.Rotations())
	}
}

// TestConnectLinkIsReusedWhilePending: the triggers that follow for an end
// user who has not connected yet get the link they were given (not a new
// state each), until it is used or half its time has passed.
func TestConnectLinkIsReusedWhilePending(t *testing.T) {
	e := newConnectEnv(t)
	r1, r2 := e.replica(t, "r1"), e.replica(t, "r2")
	e.perUserToken(t, r1)
	first := e.mustAuthorize(t, r1, "u1")
	for range 3 {
		if again := e.mustAuthorize(t, r2, "u1"); strings.TrimPrefix(again, r2.web.URL) != strings.TrimPrefix(first, r1.web.URL) {
			t.Fatalf("a second trigger got another link: %s, then %s", first, again)
		}
	}
	if other := e.mustAuthorize(t, r1, "u2"); other == first {
		t.Fatal("two end users got the same link")
	}
	e.clock.advance(DefaultConnectTTL/2 + time.Second)
	fresh := e.mustAuthorize(t, r1, "u1")
	if fresh == first {
		t.Fatal("a link past half its time was given again")
	}
	back := e.srv.Login(t, fresh, "alice", "alice-password")
	if _, err := r1.conn.Complete(t.Context(), back.Query()); err != nil {
		t.Fatal(err)
	}
	// Connected: the next trigger calls; after a deletion, a new link.
	if sub, err := e.call(t, r1, "u1"); sub != "alice" || err != nil {
		t.Fatalf("call: %q %v", sub, err)
	}
	tok, _ := e.tokens.Get(t.Context(), "crm")
	if _, err := r1.mgr.DeleteConnection(t.Context(), tok, "u1"); err != nil {
		t.Fatal(err)
	}
	if again := e.mustAuthorize(t, r1, "u1"); again == fresh {
		t.Fatal("a used link was given again")
	}
}
