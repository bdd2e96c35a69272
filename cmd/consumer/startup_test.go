package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/consumer"
	"customactions/internal/natstest"
)

// closedPort returns a loopback port nothing listens on (it was free a
// moment ago).
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

type connectResult struct {
	c   *conn
	err error
}

// The service started before its NATS server waits for it, logging what it
// waits for, and connects once the server is up.
func TestConnectServiceWaitsForNATS(t *testing.T) {
	port := closedPort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	logs := &lockedWriter{buf: &bytes.Buffer{}}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan connectResult, 1)
	go func() {
		c, err := connectService(ctx, &settings{NATSURL: url}, log)
		done <- connectResult{c, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("connectService returned before any server listened: %v", r.err)
	case <-time.After(1500 * time.Millisecond):
	}
	out := logs.String()
	for _, want := range []string{`"msg":"waiting for NATS"`, `"url":"` + url + `"`, `"attempt":`, `"retry_in":`} {
		if !strings.Contains(out, want) {
			t.Errorf("process log lacks %s:\n%s", want, out)
		}
	}
	natstest.StartAt(t, t.TempDir(), port)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("connectService: %v", r.err)
		}
		defer r.c.close()
		if !r.c.nc.IsConnected() {
			t.Error("not connected")
		}
		if _, err := r.c.js.AccountInfo(ctx); err != nil {
			t.Errorf("JetStream: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("connectService did not connect within 20s of the server starting")
	}
	if !strings.Contains(logs.String(), `"msg":"connected to NATS"`) {
		t.Errorf("process log does not say it connected:\n%s", logs.String())
	}
}

// SIGTERM (the context ending) stops the wait.
func TestConnectServiceStopsWaitingWhenContextEnds(t *testing.T) {
	url := fmt.Sprintf("nats://127.0.0.1:%d", closedPort(t))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel)
	start := time.Now()
	c, err := connectService(ctx, &settings{NATSURL: url}, slog.New(slog.DiscardHandler))
	if err == nil {
		c.close()
		t.Fatal("connectService succeeded with no server")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), url) {
		t.Errorf("error %q: want the URL and context.Canceled", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Errorf("returned after %s; want soon after the context ended", d)
	}
}

// What a retry cannot fix ends the wait at once.
func TestConnectServicePermanentError(t *testing.T) {
	srv := natstest.Start(t)
	start := time.Now()
	c, err := connectService(context.Background(), &settings{NATSURL: srv.ClientURL(), NATSCreds: "/nonexistent/actions.creds"},
		slog.New(slog.DiscardHandler))
	if err == nil {
		c.close()
		t.Fatal("connectService succeeded with a missing credentials file")
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v: want the missing file", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s; want at once", d)
	}
}

// An embedded server whose address is taken is reported at once.
func TestConnectServiceEmbeddedAddressInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	start := time.Now()
	c, err := connectService(context.Background(), &settings{DataDir: t.TempDir(), Listen: busy.Addr().String()},
		slog.New(slog.DiscardHandler))
	if err == nil {
		c.close()
		t.Fatal("connectService succeeded on an address in use")
	}
	want := busy.Addr().String() + " is already in use"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "ACTIONS_NATS_LISTEN") {
		t.Errorf("error %q: want %q and the setting's name", err, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s; want at once", d)
	}
}

// A stream of the service's name with another installation's subjects
// stops the start-up with a message, instead of being rewritten or retried
// forever.
func TestServiceRefusesForeignStream(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	foreign := jetstream.StreamConfig{Name: "ACTIONS_TRIGGERS", Subjects: []string{"acme.trigger.>"}, Retention: jetstream.WorkQueuePolicy}
	if _, err := js.CreateStream(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	s, err := loadSettings(newEnv("NATS_URL", srv.ClientURL(), "ACTIONS_PREFIX", "actions").getenv)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = serve(ctx, s, slog.New(slog.DiscardHandler), nil)
	if err == nil {
		t.Fatal("serve returned nil")
	}
	if !errors.Is(err, consumer.ErrStreamConflict) {
		t.Errorf("error %v does not match consumer.ErrStreamConflict", err)
	}
	for _, want := range []string{"ACTIONS_TRIGGERS", "acme.trigger.>", "actions.trigger.>"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("refused after %s; want at once", d)
	}
	st, err := js.Stream(ctx, "ACTIONS_TRIGGERS")
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != "acme.trigger.>" {
		t.Errorf("the foreign stream's subjects changed to %v", got)
	}
}

// consumer trigger refuses ids that would make a malformed subject or
// header, before publishing anything.
func TestTriggerRefusesMalformedIDs(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CATCH_ALL", Subjects: []string{"actions.>", "acme.>"}}); err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 100)
	sub, err := nc.Subscribe(">", func(m *nats.Msg) {
		if !strings.HasPrefix(m.Subject, "$JS.") && !strings.HasPrefix(m.Subject, "_INBOX.") {
			seen <- m.Subject
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	file := writeFile(t, "t.json", `{"id":"f1","action_id":"x.y","source":"inbox","request":{"method":"GET","url":"http://example.com"}}`)
	url := "http://example.com/"
	tests := []struct {
		name    string
		prefix  string
		args    []string
		wantErr string // "" : published
	}{
		{"valid", "actions", []string{"-action", "ok-1", "-url", url, "-token", "tok_1", "-id", "trg 1/a"}, ""},
		{"dotted action", "actions", []string{"-action", "a.b", "-url", url}, `action id "a.b"`},
		{"wildcard action", "actions", []string{"-action", "a*", "-url", url}, `action id "a*"`},
		{"full wildcard action", "actions", []string{"-action", ">", "-url", url}, `action id ">"`},
		{"long action", "actions", []string{"-action", strings.Repeat("a", 129), "-url", url}, "action id"},
		{"unknown source", "actions", []string{"-action", "ok", "-source", "email", "-url", url}, `source "email"`},
		{"dotted source", "actions", []string{"-action", "ok", "-source", "in.box", "-url", url}, `source "in.box"`},
		{"dotted token", "actions", []string{"-action", "ok", "-token", "t.k", "-url", url}, `token id "t.k"`},
		{"spaced token", "actions", []string{"-action", "ok", "-token", "t k", "-url", url}, `token id "t k"`},
		{"newline in trigger id", "actions", []string{"-action", "ok", "-id", "a\nb", "-url", url}, "trigger id"},
		{"long trigger id", "actions", []string{"-action", "ok", "-id", strings.Repeat("i", 129), "-url", url}, "trigger id"},
		{"dotted action in a file", "actions", []string{"-f", file}, `action id "x.y"`},
		{"dotted prefix", "acme.prod", []string{"-action", "ok", "-url", url}, "ACTIONS_PREFIX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv("NATS_URL", srv.ClientURL(), "ACTIONS_PREFIX", tt.prefix)
			var out, errOut bytes.Buffer
			err := run(ctx, append([]string{"trigger", "-wait", "0"}, tt.args...), env.getenv, &out, &errOut)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("trigger: %v (%s)", err, errOut.String())
				}
				select {
				case <-seen:
				case <-time.After(5 * time.Second):
					t.Fatal("nothing published")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("trigger: error %v, want one saying %s", err, tt.wantErr)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case subj := <-seen:
				t.Errorf("published on %q", subj)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}
