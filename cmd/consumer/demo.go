package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

// demoAPI is a small local API with an OAuth-style auth endpoint: it hands
// out a new token per auth request and accepts only the newest one, and
// it can revoke it to show a refresh on 401.
type demoAPI struct {
	mu       sync.Mutex
	current  string
	n        int
	authHits atomic.Int64
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

	fmt.Fprintln(stdout, "\nlog events (what `consumer logs` prints):")
	time.Sleep(200 * time.Millisecond)
	if err := printAllLogs(ctx, a.conn.js, s.consumerConfig().LogStream, stdout); err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(stdout, "\nthe service keeps running; try:\n  NATS_URL=%s go run ./cmd/consumer trigger -action create-order -token shop -method POST -url %s/shop/orders -body '{}'\n  NATS_URL=%s go run ./cmd/consumer logs -f\n(Ctrl-C to stop)\n",
			a.conn.srv.ClientURL(), srv.URL, a.conn.srv.ClientURL())
		<-ctx.Done()
	}
	cancel()
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func printAllLogs(ctx context.Context, js jetstream.JetStream, stream string, w io.Writer) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			printLog(w, m.Data(), "text")
		}
		if got == 0 {
			return nil
		}
	}
}
