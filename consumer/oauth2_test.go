package consumer

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"customactions/admin"
	"customactions/auth"
	"customactions/events"
	"customactions/internal/netguard"
	"customactions/internal/oauthtest"
	"customactions/internal/testclock"
)

// oauthAPI is an action that accepts only access tokens the authorization
// server says are valid.
type oauthAPI struct {
	*httptest.Server
	calls, refused atomic.Int64
}

func newOAuthAPI(t *testing.T, srv *oauthtest.Server) *oauthAPI {
	a := &oauthAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !srv.Valid(r.Context(), tok) {
			a.refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"contact":{"id":42}}`)
	}))
	t.Cleanup(a.Close)
	return a
}

// TestOAuth2TokenThroughTheService: a refresh_token oauth2 token saved
// through the admin service signs triggers with access tokens the
// authorization server (fosite) issued; once the grant is revoked and the
// access token expired, triggers fail with reauthorization_required
// without calling the action or (after the one refused refresh) the token
// endpoint, and one token_reauthorization_required event is published;
// a new refresh token saved recovers the token (one token_recovered) and
// triggers succeed again. The health metrics follow.
func TestOAuth2TokenThroughTheService(t *testing.T) {
	h := newHarness(t, Config{})
	srv := oauthtest.New(t, oauthtest.Options{})
	api := newOAuthAPI(t, srv)
	clk := testclock.New(time.Now())
	client := netguard.Policy{AllowPrivate: true}.Client(4)
	fetcher := auth.NewFetcher(auth.WithHTTPClient(client))
	store := auth.NewStore(h.res.Tokens, nil)
	mgr := auth.NewManager(h.res.Fetched, fetcher, auth.WithManagerClock(clk.Now))
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	r := h.start(WithTokens(store, mgr), WithMetrics(metrics))
	// The wiring of the health metrics (one line in New).
	mgr.OnHealthChange(metrics.TokenHealthHook(TokenHealthLog(r.svc.pub, r.svc.log, r.svc.now)))
	adm := admin.New(h.cfg.Prefix, store, mgr, fetcher, nil, nil)

	save := func(refresh string) {
		t.Helper()
		tok := &auth.Token{ID: "crm", Name: "CRM", Type: auth.TypeOAuth2, Prefix: "Bearer ", Header: "Authorization",
			OAuth2: &auth.OAuth2{Grant: auth.GrantRefreshToken, TokenURL: srv.TokenURL, ClientID: srv.ClientID,
				ClientSecret: auth.Secret(srv.ClientSecret), Scopes: []string{"api"}, RefreshToken: auth.Secret(refresh)}}
		if _, err := adm.SaveToken(t.Context(), tok); err != nil {
			t.Fatalf("save: %v", err)
		}
	}
	n := 0
	fire := func() events.Result {
		t.Helper()
		n++
		id := fmt.Sprintf("o%d", n)
		h.trigger(&events.Trigger{ID: id, ActionID: "lookup", Source: events.SourceInbox, TokenID: "crm",
			Request: events.Request{Method: "GET", URL: api.URL + "/contacts/42"}})
		return h.result(id, 15*time.Second)
	}
	countEvents := func(event string) int {
		c := 0
		for _, e := range h.logEvents(0, 0) {
			if e.Event == event {
				if e.ActionID != TokenEventsActionID || e.TokenID != "crm" {
					t.Errorf("%s event for action %q token %q, want %s and crm", event, e.ActionID, e.TokenID, TokenEventsActionID)
				}
				c++
			}
		}
		return c
	}
	waitEvents := func(event string, want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for countEvents(event) < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // a second one would have come by now
		if got := countEvents(event); got != want {
			t.Errorf("%d %s events, want %d", got, event, want)
		}
	}

	pasted := srv.MintRefreshToken(t, "api")
	save(pasted)
	for range 2 {
		if res := fire(); res.Status != events.StatusSucceeded || res.HTTPStatus != 200 {
			t.Fatalf("trigger with a fresh token: %s %d %+v", res.Status, res.HTTPStatus, res.Error)
		}
	}
	if api.refused.Load() != 0 || srv.RefreshCalls() != 1 {
		t.Errorf("refused %d, refreshes %d: want 0 and the save's 1", api.refused.Load(), srv.RefreshCalls())
	}

	// The user revokes the app; the access token expires.
	srv.RevokeAll()
	clk.Advance(2 * time.Hour)
	callsBefore := api.calls.Load()
	res := fire()
	if res.Status != events.StatusFailed || res.Error == nil || res.Error.Code != events.CodeReauthorizationRequired {
		t.Fatalf("trigger after revocation: %s %+v, want failed reauthorization_required", res.Status, res.Error)
	}
	tokenCalls := srv.TokenCalls()
	res = fire()
	if res.Error == nil || res.Error.Code != events.CodeReauthorizationRequired {
		t.Fatalf("second trigger after revocation: %s %+v", res.Status, res.Error)
	}
	if got := api.calls.Load() - callsBefore; got != 0 {
		t.Errorf("%d action calls while the token needs reauthorization, want 0", got)
	}
	if got := srv.TokenCalls() - tokenCalls; got != 0 {
		t.Errorf("%d token requests while the token needs reauthorization, want 0", got)
	}
	waitEvents(events.EventTokenReauthorizationRequired, 1)
	if v, err := adm.TokenView(t.Context(), "crm"); err != nil || v.Status != auth.HealthReauthorizationRequired || !strings.Contains(v.LastError, "invalid_grant") {
		t.Errorf("view after revocation: status %q last error %q (%v)", v.Status, v.LastError, err)
	}

	// An admin pastes a new refresh token, a minute later. (The events'
	// Nats-Msg-Id is token id and change time: two changes in the same
	// millisecond would be deduplicated into one.)
	clk.Advance(time.Minute)
	save(srv.MintRefreshToken(t, "api"))
	waitEvents(events.EventTokenRecovered, 1)
	for range 2 {
		if res := fire(); res.Status != events.StatusSucceeded {
			t.Fatalf("trigger after the new refresh token: %s %+v", res.Status, res.Error)
		}
	}
	if srv.ReusedRefreshTokens() != 0 || srv.FamiliesRevoked() != 0 {
		t.Errorf("a refresh token was sent twice (%d reused, %d families revoked)", srv.ReusedRefreshTokens(), srv.FamiliesRevoked())
	}

	// Metrics: two changes to ok (the first save, the recovery), one to
	// reauthorization_required; the gauge reads the record: ok.
	changes := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "actions_token_health_changes_total" {
			for _, m := range mf.GetMetric() {
				changes[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if changes[auth.HealthOK] != 2 || changes[auth.HealthReauthorizationRequired] != 1 {
		t.Errorf("health changes %v, want ok 2 and reauthorization_required 1", changes)
	}
	creg := prometheus.NewRegistry()
	creg.MustRegister(r.svc.Collector())
	health := map[string]float64{}
	mfs, err = creg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "actions_token_health" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			health[l["token"]+"/"+l["status"]] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"crm/ok": 1, "crm/degraded": 0, "crm/reauthorization_required": 0}
	if fmt.Sprint(health) != fmt.Sprint(want) {
		t.Errorf("actions_token_health %v, want %v", health, want)
	}
	assertNoSecret(t, "process log", h.logs.String(), pasted, srv.ClientSecret)
}
