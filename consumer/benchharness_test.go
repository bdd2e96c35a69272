package consumer

import (
	"context"
	"testing"

	"customactions/events"
	"customactions/internal/natstest"
	"customactions/internal/netguard"
)

type benchHarness struct {
	*harness
	b testing.TB
}

func newBenchHarness(b testing.TB) *benchHarness {
	srv := natstest.Start(b)
	nc, js := natstest.Connect(b, srv)
	cfg := Config{Workers: 64, ActionConcurrency: 64}.WithDefaults() // one action: no bulkhead below the workers
	res, err := Setup(context.Background(), js, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return &benchHarness{harness: &harness{srv: srv, nc: nc, js: js, res: res, cfg: cfg, subj: events.NewSubjects("")}, b: b}
}

func (h *benchHarness) startBench() {
	_, js := natstest.Connect(h.b, h.srv)
	svc, err := New(js, h.res, h.cfg, WithHTTPClient(netguard.Policy{AllowPrivate: true}.Client(h.cfg.Workers)))
	if err != nil {
		h.b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	h.b.Cleanup(func() { cancel(); <-done })
}
