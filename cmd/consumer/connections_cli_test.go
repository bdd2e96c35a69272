package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"customactions/events"
	"customactions/internal/oauthtest"
)

// freeAddr returns a loopback address that was free a moment ago: the
// public URL must name the HTTP port before the service starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// subjectAPI answers 200 with the subject of the Bearer access token the
// provider issued (whose token it is), 401 otherwise.
func subjectAPI(t *testing.T, srv *oauthtest.Server) *httptest.Server {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sub, ok := srv.Subject(r.Context(), at)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, sub)
	}))
	t.Cleanup(api.Close)
	return api
}

// TestConnectionsThroughTheCLI runs the connect flow of contract §11 with
// the binary's commands and a real authorization server: the end user's
// browser is played by oauthtest.Login (the Chromium test plays it in a
// real browser).
func TestConnectionsThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	public := "http://" + addr
	env := newEnv("ACTIONS_HTTP_ADDR", addr, "ACTIONS_PUBLIC_URL", public,
		"ACTIONS_ENCRYPTION_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	a := startService(t, env)
	srv := oauthtest.New(t, oauthtest.Options{})
	srv.AllowRedirectURI(public + "/oauth/callback")
	api := subjectAPI(t, srv)

	tok := `{"id": "crm", "name": "CRM as the contact", "type": "oauth2", "prefix": "Bearer ", "header": "Authorization",
		"oauth2": {"grant": "authorization_code", "per_end_user": true, "authorize_url": "` + srv.AuthorizeURL + `",
		"token_url": "` + srv.TokenURL + `", "revoke_url": "` + srv.RevokeURL + `", "client_id": "` + srv.ClientID + `",
		"client_secret": "` + srv.ClientSecret + `", "scopes": ["api", "offline_access"]}}`
	if out, errOut, err := cli(t, env, "tokens", "save", "-f", writeFile(t, "crm.json", tok)); err != nil {
		t.Fatalf("save: %v %s %s", err, out, errOut)
	}
	connected := make(chan *nats.Msg, 4)
	sub, err := a.conn.nc.ChanSubscribe("actions.connection.crm", connected)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	trigger := func(id, user string) events.Result {
		t.Helper()
		args := []string{"trigger", "-id", id, "-action", "orders", "-source", "bot", "-token", "crm", "-url", api.URL}
		if user != "" {
			args = append(args, "-user", user)
		}
		out, errOut, _ := cli(t, env, args...)
		var r events.Result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("trigger %s: %v\n%s\n%s", id, err, out, errOut)
		}
		return r
	}

	if r := trigger("t-no-user", ""); r.Status != events.StatusRejected || r.Error.Code != events.CodeInvalidTrigger || !strings.Contains(r.Error.Message, "end_user.id") {
		t.Fatalf("trigger without end user: %+v", r)
	}
	r := trigger("t-1", "contact_a")
	if r.Status != events.StatusAuthorizationRequired || r.Error.Code != events.CodeAuthorizationRequired || r.Attempts != 0 ||
		r.EndUserID != "contact_a" || !strings.HasPrefix(r.AuthorizationURL, public+"/connect/") {
		t.Fatalf("first trigger: %+v", r)
	}

	// The end user opens the link (served by the service: it redirects to
	// the provider) and logs in; the provider sends the browser back to
	// the service's callback.
	back := srv.Login(t, r.AuthorizationURL, "alice", "alice-password")
	if !strings.HasPrefix(back.String(), public+"/oauth/callback?") {
		t.Fatalf("provider sent the browser to %s", back)
	}
	page := get(t, back.String())
	if page.status != http.StatusOK || !strings.Contains(page.body, "connected") || page.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("callback page: %d %q %v", page.status, page.body, page.header)
	}
	select {
	case m := <-connected:
		var ev events.ConnectionEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.TokenID != "crm" || ev.EndUserID != "contact_a" ||
			ev.Status != events.ConnectionConnected || ev.TriggerID != "t-1" || ev.ActionID != "orders" {
			t.Fatalf("connection event %s (%v)", m.Data, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no connection event")
	}
	// The callback again (a reload, a replay): refused, nothing changes.
	if again := get(t, back.String()); again.status != http.StatusGone || !strings.Contains(again.body, "already used") {
		t.Fatalf("replayed callback: %d %q", again.status, again.body)
	}
	// A tampered state, and a provider error: plain pages, the parameter
	// not reflected unescaped.
	if p := get(t, public+"/oauth/callback?state=%3Cscript%3Ealert(1)%3C%2Fscript%3E&code=x"); p.status != http.StatusBadRequest || strings.Contains(p.body, "<script>") {
		t.Fatalf("tampered callback: %d %q", p.status, p.body)
	}

	if r := trigger("t-2", "contact_a"); r.Status != events.StatusSucceeded || r.Response == nil || r.Response.Body != "alice" {
		t.Fatalf("trigger sent again: %+v", r)
	}

	out, _, err := cli(t, env, "connections", "list", "crm")
	if err != nil || !strings.Contains(out, "contact_a") || !strings.Contains(out, "ok") {
		t.Fatalf("connections list: %q %v", out, err)
	}
	if _, errOut, err := cli(t, env, "connections", "delete", "crm"); err == nil || !strings.Contains(errOut, "end_user_id") {
		t.Fatalf("delete without an end user: %q %v", errOut, err)
	}
	before := srv.Revocations()
	out, _, err = cli(t, env, "connections", "delete", "crm", "contact_a")
	if err != nil || !strings.Contains(out, "revoked at the provider") || srv.Revocations() != before+1 {
		t.Fatalf("connections delete: %q %v (revocations %d → %d)", out, err, before, srv.Revocations())
	}
	if r := trigger("t-3", "contact_a"); r.Status != events.StatusAuthorizationRequired {
		t.Fatalf("trigger after delete: %+v", r)
	}
	out, _, err = cli(t, env, "logs", "-o", "json", "_tokens")
	if err != nil || !strings.Contains(out, `"connection_created"`) || !strings.Contains(out, `"connection_deleted"`) {
		t.Fatalf("token log events: %q %v", out, err)
	}

	// A workspace-wide authorization_code token is connected by an admin.
	ws := strings.Replace(strings.Replace(tok, `"per_end_user": true, `, "", 1), `"id": "crm"`, `"id": "crm-ws"`, 1)
	if _, errOut, err := cli(t, env, "tokens", "save", "-f", writeFile(t, "ws.json", ws)); err != nil {
		t.Fatalf("save workspace token: %v %s", err, errOut)
	}
	if _, errOut, err := cli(t, env, "tokens", "connect", "crm"); err == nil || !strings.Contains(errOut, "per-end-user") {
		t.Fatalf("connect of a per_end_user token: %q %v", errOut, err)
	}
	out, _, err = cli(t, env, "tokens", "connect", "crm-ws")
	link := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, public+"/connect/") {
			link = f
		}
	}
	if err != nil || link == "" {
		t.Fatalf("tokens connect: %q %v", out, err)
	}
	if p := get(t, srv.Login(t, link, "bob", "bob-password").String()); p.status != http.StatusOK {
		t.Fatalf("workspace callback: %d %q", p.status, p.body)
	}
	out, _, err = cli(t, env, "tokens", "get", "crm-ws")
	if err != nil || !strings.Contains(out, `"status": "ok"`) {
		t.Fatalf("workspace token after connecting: %q %v", out, err)
	}
	var ws2 events.Result
	out, _, _ = cli(t, env, "trigger", "-id", "t-ws", "-action", "orders", "-token", "crm-ws", "-url", api.URL)
	if err := json.Unmarshal([]byte(out), &ws2); err != nil || ws2.Status != events.StatusSucceeded || ws2.Response.Body != "bob" {
		t.Fatalf("workspace token call: %s", out)
	}
}

type httpPage struct {
	status int
	body   string
	header http.Header
}

func get(t *testing.T, u string) httpPage {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpPage{status: resp.StatusCode, body: string(b), header: resp.Header}
}
