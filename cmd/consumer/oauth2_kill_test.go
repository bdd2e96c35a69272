package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"customactions/admin"
	"customactions/auth"
	"customactions/consumer"
	"customactions/events"
	"customactions/internal/natstest"
	"customactions/internal/netguard"
	"customactions/internal/oauthtest"
)

// holdingProxy forwards token requests to the authorization server. Once
// armed, it forwards the first refresh, lets the server answer it (the
// refresh token is spent and rotated there), tells the test, and never
// answers: the process that sent it is killed while its request is at
// the token endpoint.
type holdingProxy struct {
	*httptest.Server
	armed   atomic.Bool
	sent    chan struct{}
	once    sync.Once
	calls   atomic.Int64
	release chan struct{}
}

func newHoldingProxy(t *testing.T, target string) *holdingProxy {
	p := &holdingProxy{sent: make(chan struct{}), release: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(context.Background(), r.Method, target, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		form, _ := url.ParseQuery(string(body))
		if p.armed.Load() && form.Get("grant_type") == "refresh_token" {
			p.once.Do(func() { close(p.sent) })
			<-p.release
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(func() { close(p.release); p.Close() })
	return p
}

// TestOAuth2RefreshHolderSIGKILLed: a consumer process is killed with
// SIGKILL while its refresh of an oauth2 token (rotating refresh tokens,
// Ory fosite) is at the token endpoint. Another replica does not send the
// spent refresh token again: the token ends reauthorization_required,
// reported once, with no further token endpoint calls, and the server
// never saw a refresh token twice (which would have revoked the grant).
func TestOAuth2RefreshHolderSIGKILLed(t *testing.T) {
	srv := oauthtest.New(t, oauthtest.Options{AccessTokenLifespan: 2 * time.Second})
	proxy := newHoldingProxy(t, srv.TokenURL)
	ns := natstest.Start(t)
	_, js := natstest.Connect(t, ns)
	ctx := t.Context()
	res, err := consumer.Setup(ctx, js, consumer.Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	var apiCalls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiCalls.Add(1)
		at, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !srv.Valid(r.Context(), at) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(api.Close)

	// This test process is the other replica: it saves the token (one
	// refresh, through the proxy, not armed yet) and watches the record.
	client := netguard.Policy{AllowPrivate: true}.Client(4)
	fetcher := auth.NewFetcher(auth.WithHTTPClient(client))
	store := auth.NewStore(res.Tokens, nil)
	mgr := auth.NewManager(res.Fetched, fetcher, auth.WithLeaseTTL(time.Second), auth.WithHolder("survivor"))
	var mu sync.Mutex
	var changes []auth.HealthChange
	mgr.OnHealthChange(func(c auth.HealthChange) { mu.Lock(); changes = append(changes, c); mu.Unlock() })
	watch, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := store.Watch(watch); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Watch(watch); err != nil {
		t.Fatal(err)
	}
	adm := admin.New("actions", store, mgr, fetcher, nil, nil)
	tok := &auth.Token{ID: "crm", Type: auth.TypeOAuth2, Prefix: "Bearer ", OAuth2: &auth.OAuth2{Grant: auth.GrantRefreshToken,
		TokenURL: proxy.URL, ClientID: srv.ClientID, ClientSecret: auth.Secret(srv.ClientSecret), RefreshToken: auth.Secret(srv.MintRefreshToken(t))}}
	if _, err := adm.SaveToken(ctx, tok); err != nil {
		t.Fatal(err)
	}

	victim := startProcess(t, "NATS_URL="+ns.ClientURL(), "ACTIONS_ALLOW_PRIVATE_NETWORKS=true", "ACTIONS_LOG_LEVEL=warn",
		"ACTIONS_DATA_DIR="+t.TempDir())
	waitConsumer(t, js)
	time.Sleep(2500 * time.Millisecond) // the saved access token expires
	proxy.armed.Store(true)
	tr := events.Trigger{ID: "k1", ActionID: "crm-read", Source: "bot", TokenID: "crm", Request: events.Request{Method: "GET", URL: api.URL}}
	data, _ := json.Marshal(tr)
	if _, err := js.Publish(ctx, "actions.trigger.bot.crm-read", data); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.sent:
	case <-time.After(30 * time.Second):
		t.Fatalf("the process did not refresh the token:\n%s", victim.out.String())
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = victim.cmd.Process.Wait()
	callsAtKill, apiAtKill := proxy.calls.Load(), apiCalls.Load()

	// The surviving replica needs a token: the killed holder's intent
	// lapses, and the spent refresh token must not be sent again.
	a := auth.NewAuthenticator(store, mgr)
	var last error
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, last = a.Do(ctx, auth.Ref{TokenID: "crm"}, func(context.Context, auth.Credential) int { return 200 })
		if errors.Is(last, auth.ErrReauthorizationRequired) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !errors.Is(last, auth.ErrReauthorizationRequired) {
		t.Fatalf("after the holder was killed: %v, want reauthorization required", last)
	}
	if n := proxy.calls.Load() - callsAtKill; n != 0 {
		t.Errorf("%d token endpoint calls after the holder was killed, want none", n)
	}
	if apiCalls.Load() != apiAtKill {
		t.Errorf("the API was called after the kill")
	}
	mu.Lock()
	var reauth int
	for _, c := range changes {
		if c.To == auth.HealthReauthorizationRequired {
			reauth++
		}
	}
	mu.Unlock()
	if reauth != 1 {
		t.Errorf("%d changes to reauthorization_required, want one: %+v", reauth, changes)
	}
	if srv.ReusedRefreshTokens() != 0 || srv.FamiliesRevoked() != 0 {
		t.Errorf("a refresh token was sent twice (%d) or a family revoked (%d)", srv.ReusedRefreshTokens(), srv.FamiliesRevoked())
	}
}
