package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/admin"
	"customactions/events"
)

// demoAPI is a small local API with an OAuth-style auth endpoint: it hands
// out a new token per auth request and accepts only the newest one, and
// it can revoke it to show a refresh on 401. It also has a tiny OAuth 2.0
// token endpoint (grant refresh_token only) that rotates refresh tokens:
// each refresh token is good for one refresh, which answers a new access
// token and a new refresh token.
type demoAPI struct {
	mu       sync.Mutex
	current  string
	n        int
	authHits atomic.Int64

	oauth demoOAuth
}

// demoOAuth is the state of the demo's OAuth 2.0 token endpoint.
type demoOAuth struct {
	mu      sync.Mutex
	n       int
	access  string
	refresh string         // the one refresh token that works now
	used    map[string]int // times each refresh token was presented
}

const (
	demoOAuthClient = "demo-app"
	demoOAuthSecret = "demo-oauth-client-secret"
)

// mint returns a new refresh token, as an admin would get it elsewhere.
func (o *demoOAuth) mint() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	o.refresh = fmt.Sprintf("demo-refresh-token-%04d", o.n)
	return o.refresh
}

// token answers a refresh_token grant, rotating the refresh token.
func (o *demoOAuth) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.FormValue("client_id"), r.FormValue("client_secret")
	}
	w.Header().Set("Content-Type", "application/json")
	if id != demoOAuthClient || secret != demoOAuthSecret {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	rt := r.FormValue("refresh_token")
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.used == nil {
		o.used = map[string]int{}
	}
	o.used[rt]++
	if r.FormValue("grant_type") != "refresh_token" || rt == "" || rt != o.refresh {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant"}`)
		return
	}
	o.n++
	o.access = fmt.Sprintf("demo-oauth-access-%04d", o.n)
	o.refresh = fmt.Sprintf("demo-refresh-token-%04d", o.n)
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600,"refresh_token":%q}`, o.access, o.refresh)
}

// revoke makes the API refuse the current access token.
func (o *demoOAuth) revoke() {
	o.mu.Lock()
	o.access = "revoked"
	o.mu.Unlock()
}

// refreshes returns the refresh requests made and the most times one
// refresh token was presented.
func (o *demoOAuth) refreshes() (total, most int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.used {
		total += n
		most = max(most, n)
	}
	return total, most
}

func (o *demoOAuth) accepts(authorization string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.access != "" && authorization == "Bearer "+o.access
}

func (d *demoAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		d.authHits.Add(1)
		if r.FormValue("client_secret") != "demo-client-secret" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		d.mu.Lock()
		d.n++
		d.current = fmt.Sprintf("demo-access-token-%04d", d.n)
		tok := d.current
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, tok)
	})
	mux.HandleFunc("POST /oauth2/token", d.oauth.token)
	mux.HandleFunc("POST /admin/revoke-oauth", func(w http.ResponseWriter, r *http.Request) { d.oauth.revoke() })
	mux.HandleFunc("/helpdesk/", func(w http.ResponseWriter, r *http.Request) {
		if !d.oauth.accepts(r.Header.Get("Authorization")) {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ticket":{"id":7,"path":%q}}`, r.URL.Path)
	})
	mux.HandleFunc("POST /admin/revoke", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.current = "revoked"
		d.mu.Unlock()
	})
	mux.HandleFunc("/shop/", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		ok := r.Header.Get("Authorization") == "Bearer "+d.current
		d.mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"order_id":"ord-%d","path":%q}`, time.Now().UnixNano()%100000, r.URL.Path)
	})
	mux.HandleFunc("/crm/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "crm-demo-key-1234" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"contact":{"id":42,"name":"Ada"}}`)
	})
	mux.HandleFunc("/flaky/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down", http.StatusInternalServerError)
	})
	return mux
}

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep the service running after the demo (Ctrl-C to stop)")
	verbose := fs.Bool("v", false, "print the service's own JSON log lines too")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "actions-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s.NATSURL, s.DataDir, s.AllowPrivate = "", dir, true
	if getenv("ACTIONS_NATS_LISTEN") == "" {
		s.Listen = "127.0.0.1:0"
	}
	s.BreakerConsecutive, s.BreakerCooldown = 3, 30*time.Second
	uiPassword := ""
	if *keep {
		uiPassword = demoUI(s)
	}
	api := &demoAPI{}
	srv := httptest.NewServer(api.handler())
	defer srv.Close()

	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan *app, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, s, log, func(a *app) { ready <- a }) }()
	var a *app
	select {
	case a = <-ready:
	case err := <-served:
		return fmt.Errorf("demo: service did not start: %w", err)
	}

	fmt.Fprintf(stdout, "Custom Actions demo\n  embedded NATS: %s (store %s)\n  local API:     %s\n\n", a.conn.srv.ClientURL(), dir, srv.URL)
	subjects := events.NewSubjects(s.Prefix)
	admin := func(verb string, body string) (json.RawMessage, error) {
		m, err := a.conn.nc.Request(subjects.Prefix+".admin."+verb, []byte(body), 30*time.Second)
		if err != nil {
			return nil, err
		}
		var e struct{ Error *events.Error }
		if json.Unmarshal(m.Data, &e) == nil && e.Error != nil {
			return m.Data, e.Error
		}
		return m.Data, nil
	}
	if _, err := admin("tokens.save", `{"id":"crm","name":"CRM","description":"read-only key","type":"text",
		"value":"crm-demo-key-1234","header":"X-Api-Key"}`); err != nil {
		return fmt.Errorf("save text token: %w", err)
	}
	fmt.Fprintln(stdout, "saved text token crm (header X-Api-Key)")
	if reply, err := admin("tokens.save", `{"id":"shop","name":"Shop","type":"http","description":"client credentials",
		"request":{"method":"POST","url":"`+srv.URL+`/oauth/token","params":{"grant_type":"client_credentials","client_id":"demo","client_secret":"wrong"}},
		"token_path":"access_token","prefix":"Bearer ","header":"Authorization"}`); err != nil {
		fmt.Fprintf(stdout, "saving HTTP token shop with a wrong client_secret is refused: %v\n", err)
	} else {
		return fmt.Errorf("a token with a wrong secret was saved: %s", reply)
	}
	if _, err := admin("tokens.save", `{"id":"shop","name":"Shop","type":"http","description":"client credentials",
		"request":{"method":"POST","url":"`+srv.URL+`/oauth/token","params":{"grant_type":"client_credentials","client_id":"demo","client_secret":"demo-client-secret"}},
		"token_path":"access_token","expires_in_path":"expires_in","prefix":"Bearer ","header":"Authorization"}`); err != nil {
		return fmt.Errorf("save http token: %w", err)
	}
	fmt.Fprintln(stdout, "saved HTTP token shop after its test request passed")
	if _, err := admin("tokens.save", `{"id":"helpdesk","name":"Helpdesk","type":"oauth2","description":"OAuth 2.0, rotating refresh token",
		"oauth2":{"grant":"refresh_token","token_url":"`+srv.URL+`/oauth2/token","client_id":"`+demoOAuthClient+`","client_secret":"`+demoOAuthSecret+`",
		"scopes":["tickets"],"refresh_token":"`+api.oauth.mint()+`"},"prefix":"Bearer ","header":"Authorization"}`); err != nil {
		return fmt.Errorf("save oauth2 token: %w", err)
	}
	fmt.Fprintln(stdout, "saved OAuth 2.0 token helpdesk: the save spent the pasted refresh token in one refresh and keeps the rotated one")
	list, _ := admin("tokens.list", `{}`)
	fmt.Fprintf(stdout, "tokens.list (secrets masked): %s\n\n", list)

	n := 0
	fire := func(title string, t events.Trigger) {
		n++
		t.ID = fmt.Sprintf("demo-%d-%d", time.Now().UnixNano()%1e6, n)
		if t.Source == "" {
			t.Source = "inbox"
		}
		if t.Context == nil {
			t.Context = json.RawMessage(`{"conversation_id":"c-1"}`)
		}
		r, _, err := publishTrigger(ctx, a.conn.nc, a.conn.js, subjects, &t, 30*time.Second, nil)
		fmt.Fprintf(stdout, "%d. %s\n   %s %s\n", n, title, t.Request.Method, t.Request.URL)
		if err != nil {
			fmt.Fprintf(stdout, "   -> %v\n", err)
			return
		}
		line := fmt.Sprintf("   -> %s", r.Status)
		if r.HTTPStatus != 0 {
			line += fmt.Sprintf(", http %d", r.HTTPStatus)
		}
		line += fmt.Sprintf(", attempts %d, token_refreshed %v, %d ms", r.Attempts, r.TokenRefreshed, r.DurationMS)
		if r.Error != nil {
			line += fmt.Sprintf(", error %s: %s", r.Error.Code, r.Error.Message)
		}
		fmt.Fprintln(stdout, line)
	}
	fire("text token", events.Trigger{ActionID: "lookup-contact", TokenID: "crm",
		Request: events.Request{Method: "GET", URL: srv.URL + "/crm/contacts/42"}})
	fire("HTTP token, fetched on first use", events.Trigger{ActionID: "create-order", TokenID: "shop",
		Request: events.Request{Method: "POST", URL: srv.URL + "/shop/orders", Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"sku":"A-1"}`}})
	fire("HTTP token, cached", events.Trigger{ActionID: "create-order", TokenID: "shop",
		Request: events.Request{Method: "POST", URL: srv.URL + "/shop/orders", Body: `{"sku":"B-2"}`}})
	_, _ = http.Post(srv.URL+"/admin/revoke", "text/plain", nil)
	fire("HTTP token revoked by the API: 401, one refresh, one retry", events.Trigger{ActionID: "create-order", TokenID: "shop",
		Request: events.Request{Method: "POST", URL: srv.URL + "/shop/orders", Body: `{"sku":"C-3"}`}})
	fire("OAuth 2.0 token", events.Trigger{ActionID: "open-ticket", TokenID: "helpdesk",
		Request: events.Request{Method: "GET", URL: srv.URL + "/helpdesk/tickets/7"}})
	api.oauth.revoke()
	fire("OAuth 2.0 token revoked by the API: 401, one refresh that rotates the refresh token, one retry", events.Trigger{ActionID: "open-ticket", TokenID: "helpdesk",
		Request: events.Request{Method: "GET", URL: srv.URL + "/helpdesk/tickets/7"}})
	if view, err := admin("tokens.get", `{"id":"helpdesk"}`); err == nil {
		var v struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(view, &v)
		fmt.Fprintf(stdout, "   token helpdesk: status %s\n", v.Status)
	}
	fire("invalid trigger (no URL)", events.Trigger{ActionID: "create-order",
		Request: events.Request{Method: "POST"}})
	fire("unknown token", events.Trigger{ActionID: "create-order", TokenID: "nope",
		Request: events.Request{Method: "GET", URL: srv.URL + "/shop/x"}})
	for i := range 4 {
		// The breaker records an outcome right after its result is
		// published; give it that moment before the next call.
		time.Sleep(100 * time.Millisecond)
		fire(fmt.Sprintf("failing API, live call %d (the breaker opens after 3 consecutive failures)", i+1), events.Trigger{ActionID: "sync-crm",
			Request: events.Request{Method: "POST", URL: srv.URL + "/flaky/sync"}})
	}
	fire("failing API, test run (bypasses the breaker)", events.Trigger{ActionID: "sync-crm", Source: "test",
		Request: events.Request{Method: "POST", URL: srv.URL + "/flaky/sync"}})
	fmt.Fprintf(stdout, "\nthe auth endpoint was called %d times (1 test before save, 1 first fetch, 1 refresh; plus the refused save)\n", api.authHits.Load())
	total, most := api.oauth.refreshes()
	fmt.Fprintf(stdout, "the OAuth 2.0 token endpoint got %d refreshes (the save, the 401), each answered with a new refresh token: ", total)
	if most == 1 {
		fmt.Fprintln(stdout, "every refresh token was used once")
	} else {
		fmt.Fprintf(stdout, "a refresh token was used %d times\n", most)
	}

	fmt.Fprintln(stdout, "\nlog events (what `consumer logs` prints):")
	time.Sleep(200 * time.Millisecond)
	if err := printAllLogs(ctx, a.conn.js, s.consumerConfig().LogStream, subjects.LogWildcard(), stdout); err != nil {
		return err
	}
	if *keep {
		pw := "the one in ACTIONS_ADMIN_PASSWORD"
		if uiPassword != "" {
			pw = uiPassword
		}
		fmt.Fprintf(stdout, "\nthe service keeps running; try:\n  NATS_URL=%s go run ./cmd/consumer trigger -action create-order -token shop -method POST -url %s/shop/orders -body '{}'\n  NATS_URL=%s go run ./cmd/consumer logs -f\n  the web admin UI: %s (password: %s)\n(Ctrl-C to stop)\n",
			a.conn.srv.ClientURL(), srv.URL, a.conn.srv.ClientURL(), uiURL(a.httpAddr), pw)
		<-ctx.Done()
	}
	cancel()
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// demoUI makes `demo -keep` serve the web admin UI, on a free loopback
// port and with a random password unless the environment sets them. It
// returns the password it made ("" when ACTIONS_ADMIN_PASSWORD set one).
func demoUI(s *settings) string {
	if s.HTTPAddr == "" {
		s.HTTPAddr = "127.0.0.1:0"
	}
	if s.AdminPassword != "" {
		return ""
	}
	s.AdminPassword = rand.Text()
	return s.AdminPassword
}

// uiURL is the address of the web UI served on addr (a listener's
// address); an unspecified host becomes localhost.
func uiURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/ui/"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/ui/"
}

func printAllLogs(ctx context.Context, js jetstream.JetStream, stream, filter string, w io.Writer) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	return admin.ScanStream(ctx, s, filter, 1, math.MaxUint64, func(_ uint64, data []byte) bool {
		printLog(w, data, "text")
		return true
	})
}
