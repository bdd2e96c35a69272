package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
	"customactions/events"
	"customactions/internal/natstest"
	"customactions/internal/netguard"
)

// harness is one JetStream server with the service's streams and buckets.
type harness struct {
	t    *testing.T
	srv  *natstest.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	res  *Resources
	cfg  Config
	subj events.Subjects
	logs *syncBuffer // every replica's process log
	// urls, when set, are the server URLs the next replica connects to
	// (a cluster node other than srv).
	urls string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	srv := natstest.Start(t)
	return newHarnessOn(t, srv, cfg)
}

func newHarnessOn(t *testing.T, srv *natstest.Server, cfg Config) *harness {
	t.Helper()
	nc, js := natstest.Connect(t, srv)
	cfg = cfg.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Setup(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, srv: srv, nc: nc, js: js, res: res, cfg: cfg, subj: events.NewSubjects(cfg.Prefix), logs: &syncBuffer{}}
}

// replica is one running Service with its own connection.
type replica struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan error
}

// start runs a replica of the service on its own connection until the test
// ends (or stop is called).
func (h *harness) start(opts ...Option) *replica {
	h.t.Helper()
	ropts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}
	var js jetstream.JetStream
	if h.urls != "" {
		_, js = natstest.ConnectURL(h.t, h.urls, ropts...)
	} else {
		_, js = natstest.Connect(h.t, h.srv, ropts...)
	}
	res := setupRetry(h.t, js, h.cfg)
	client := netguard.Policy{AllowPrivate: true}.Client(h.cfg.Workers)
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := []Option{WithHTTPClient(client), WithLogger(logger),
		WithTokens(auth.NewStore(res.Tokens, nil), auth.NewManager(res.Fetched, auth.NewFetcher(auth.WithHTTPClient(client))))}
	svc, err := New(js, res, h.cfg, append(base, opts...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	h.t.Cleanup(func() { r.stop(h.t) })
	return r
}

func (r *replica) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("replica: %v", err)
		}
		r.done <- nil
	case <-time.After(60 * time.Second):
		t.Errorf("replica did not stop")
	}
}

func (h *harness) putToken(tok auth.Token) {
	h.t.Helper()
	tok.Normalize()
	if err := tok.Validate(); err != nil {
		h.t.Fatal(err)
	}
	if _, err := auth.NewStore(h.res.Tokens, nil).Put(context.Background(), &tok); err != nil {
		h.t.Fatal(err)
	}
}

// publish publishes a trigger value (struct or raw bytes) on its subject.
func (h *harness) publish(subject string, v any) {
	h.t.Helper()
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			h.t.Fatal(err)
		}
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if tr, ok := v.(*events.Trigger); ok {
		msg.Header.Set(jetstream.MsgIDHeader, tr.ID)
	}
	if _, err := h.js.PublishMsg(context.Background(), msg); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) trigger(t *events.Trigger) {
	h.t.Helper()
	h.publish(h.subj.Trigger(t.Source, t.ActionID), t)
}

// results reads the stored results until n arrived or the timeout passed.
func (h *harness) results(n int, timeout time.Duration) []events.Result {
	h.t.Helper()
	return readStream[events.Result](h.t, h.js, h.cfg.ResultStream, h.subj.ResultWildcard(), n, timeout)
}

func (h *harness) logEvents(n int, timeout time.Duration) []events.LogEvent {
	h.t.Helper()
	return readStream[events.LogEvent](h.t, h.js, h.cfg.LogStream, h.subj.LogWildcard(), n, timeout)
}

// result waits for the result of trigger id.
func (h *harness) result(id string, timeout time.Duration) events.Result {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, r := range h.results(0, 0) {
			if r.TriggerID == id {
				return r
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("no result for trigger %s within %s", id, timeout)
	return events.Result{}
}

// readStream reads every message of stream (filtered) with an ordered
// consumer, waiting up to timeout for at least n.
func readStream[T any](t *testing.T, js jetstream.JetStream, stream, filter string, n int, timeout time.Duration) []T {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := readAll[T](t, js, stream, filter)
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readAll[T any](t *testing.T, js jetstream.JetStream, stream, filter string) []T {
	t.Helper()
	out, err := natstest.ReadAll[T](js, stream, filter)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertNoSecret fails when any of the secrets appears in s.
func assertNoSecret(t *testing.T, where, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s contains the secret %q", where, sec)
		}
	}
}

// setupRetry runs Setup until it succeeds; a new cluster may still be
// electing leaders.
func setupRetry(t *testing.T, js jetstream.JetStream, cfg Config) *Resources {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := Setup(ctx, js, cfg)
		cancel()
		if err == nil {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("setup: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
