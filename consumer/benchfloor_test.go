package consumer

import (
	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/floor"
)

// startFloor runs the reference pipeline of ../shared/perf (perf floor) on
// the harness's durable, in this process: what BenchmarkPipeline compares
// the consumer with, on the same server, API and load. With contractWrites
// it also does the contract's two writes (the floor of any implementation
// of the contract).
func (h *benchHarness) startFloor(workers int, contractWrites bool) {
	msgs, err := h.res.Triggers.Messages(jetstream.PullMaxMessages(workers + h.cfg.Prefetch))
	if err != nil {
		h.b.Fatal(err)
	}
	p := &floor.Pipeline{JS: h.js, Client: floor.NewClient(workers), ContractWrites: contractWrites}
	done := make(chan struct{})
	go func() { p.Run(msgs, workers); close(done) }()
	h.b.Cleanup(func() { msgs.Stop(); <-done })
}
