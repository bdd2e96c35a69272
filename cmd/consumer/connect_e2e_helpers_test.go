package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
	"customactions/internal/natstest"
	"customactions/internal/oauthtest"
)

// startReplica runs one more replica of the service in-process, on the
// NATS server of the first (natsURL), with its HTTP server on httpAddr and
// its public URL there.
func startReplica(t *testing.T, natsURL, httpAddr string) *app {
	t.Helper()
	env := newEnv("NATS_URL", natsURL, "ACTIONS_DATA_DIR", t.TempDir(), "ACTIONS_ALLOW_PRIVATE_NETWORKS", "true",
		"ACTIONS_HTTP_ADDR", httpAddr, "ACTIONS_PUBLIC_URL", "http://"+httpAddr)
	return runServe(t, env, "replica 2")
}

// whoAPI is an action API that answers 200 with the subject of the
// Bearer access token (who the call is made as) and 401 to anything else;
// it keeps the subject of each call by trigger id (Idempotency-Key).
type whoAPI struct {
	*httptest.Server
	mu    sync.Mutex
	calls int
	by    map[string]string
}

func newWhoAPI(t *testing.T, srv *oauthtest.Server) *whoAPI {
	a := &whoAPI{by: map[string]string{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sub, ok := srv.Subject(r.Context(), tok)
		a.mu.Lock()
		a.calls++
		if ok {
			a.by[r.Header.Get("Idempotency-Key")] = sub
		}
		a.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"subject": sub})
	}))
	t.Cleanup(a.Close)
	return a
}

// count is the number of calls received, subject the subject of the call
// of trigger id ("" when none was made with a valid token).
func (a *whoAPI) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func (a *whoAPI) subject(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.by[id]
}

// sendBotTrigger sends a trigger from the bot as a producer does, with
// Nats-Msg-Id.
func sendBotTrigger(t *testing.T, js jetstream.JetStream, tr events.Trigger) {
	t.Helper()
	data, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: "actions.trigger." + tr.Source + "." + tr.ActionID, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, tr.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls the stream until find picks a message out of it; the
// timeout only bounds a failure.
func waitFor[T any](t *testing.T, js jetstream.JetStream, stream, filter, what string, find func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		all, err := natstest.ReadAll[T](js, stream, filter)
		if err == nil {
			for _, v := range all {
				if find(v) {
					return v
				}
			}
		}
		if time.Now().After(deadline) {
			var zero T
			t.Fatalf("no %s in %s after 45 s (last read error: %v)", what, stream, err)
			return zero
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitResult returns the result of trigger id of action.
func waitResult(t *testing.T, js jetstream.JetStream, action, id string) events.Result {
	t.Helper()
	return waitFor(t, js, events.DefaultResultStream, "actions.result."+action, "result of "+id,
		func(r events.Result) bool { return r.TriggerID == id })
}

// noRedirect is an HTTP client that shows a redirect instead of
// following it, to read the status of a connect page.
var noRedirect = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
