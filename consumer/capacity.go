package consumer

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// workers runs the workers that take triggers from msgs until it is closed
// (drained at shutdown), and returns once they are done. Workers are
// started as they are needed, up to Config.Workers: one more starts when
// a worker takes a trigger and none is left waiting for the next. So a
// process runs as many worker goroutines as it had triggers in flight at
// once (plus one), not Workers: idle capacity costs no stack, and the GC
// does not scan thousands of idle stacks at every cycle.
func (s *Service) workers(work context.Context, msgs triggerSource) {
	p := &pool{s: s, work: work, msgs: msgs}
	p.grow()
	p.wg.Wait()
}

// pool is the workers of workers.
type pool struct {
	s    *Service
	work context.Context
	msgs triggerSource
	wg   sync.WaitGroup

	mu      sync.Mutex
	started int
	// waiting counts the workers waiting for a trigger (or about to).
	waiting atomic.Int64
}

// grow starts a worker unless Workers run already.
func (p *pool) grow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started == p.s.cfg.Workers {
		return
	}
	w := p.started
	p.started++
	p.waiting.Add(1)
	p.wg.Go(func() { p.worker(w) })
}

// worker w (its keep-alive slot) executes triggers one after the other.
func (p *pool) worker(w int) {
	// A context per worker: the per-trigger ones under it register with
	// it, not all with one shared parent.
	ctx, cancel := context.WithCancel(p.work)
	defer cancel()
	for {
		msg, err := p.msgs.Next()
		if p.waiting.Add(-1) == 0 && err == nil {
			p.grow() // none left waiting for the next trigger
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return
		}
		if err != nil {
			p.s.log.Warn("pull triggers", "err", err)
		} else {
			p.s.handle(ctx, w, msg)
		}
		p.waiting.Add(1)
	}
}

// Buffer sizes of the connections to action APIs (net/http's default is
// 4 KiB each way). A keep-alive connection is held per call in flight, so
// at thousands of calls in flight these buffers were a large part of the
// memory per call; requests and responses larger than the buffers still
// go through, with more read and write calls.
const (
	callReadBuffer  = 2 << 10
	callWriteBuffer = 2 << 10
)

// smallBuffers returns c with a transport of callReadBuffer and
// callWriteBuffer byte buffers when its transport is an *http.Transport
// that leaves them at net/http's default (a clone: c is not changed).
func smallBuffers(c *http.Client) *http.Client {
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr.ReadBufferSize != 0 || tr.WriteBufferSize != 0 {
		return c
	}
	tr = tr.Clone()
	tr.ReadBufferSize, tr.WriteBufferSize = callReadBuffer, callWriteBuffer
	out := *c
	out.Transport = tr
	return &out
}

// DefaultWorkers is Config.Workers when neither it nor an expected rate is
// given: 1024 calls in flight, about 5 000 triggers/s at 200 ms. Workers
// start as they are needed, so the default is a bound, not a reservation.
const DefaultWorkers = 1024

// Sizing is what Size derives from an expected load.
type Sizing struct {
	InFlight          int // calls in flight at the expected rate and latency (Little's law)
	Workers           int // twice InFlight, in steps of 64, at least 64
	ActionConcurrency int // three quarters of the workers: one action alone carries the expected rate with room for its tail
	MaxAckPending     int // 4 x (Workers + prefetch): room for four processes of this size
}

// Size sizes one process for rate triggers/s whose APIs answer in latency
// on average (their tail included), with prefetch triggers pulled ahead:
// by Little's law rate x latency calls are in flight; twice as many
// workers leave room for bursts and a slower tail. One action may use
// three quarters of them (1.5 x the calls in flight at the expected
// load: half of it was measured to queue at the expected rate, since the
// tail pushes the calls in flight above their mean), so a hanging API
// still leaves a quarter to the others. CAPACITY.md gives the
// measurements behind it.
func Size(rate float64, latency time.Duration, prefetch int) Sizing {
	inFlight := int(math.Ceil(rate*latency.Seconds() - 1e-9)) // 1e-9: 8000 x 0.265 is 2120, not 2121
	workers := max(64, (2*inFlight+63)/64*64)
	return Sizing{InFlight: inFlight, Workers: workers, ActionConcurrency: threeQuarters(workers),
		MaxAckPending: 4 * (workers + max(prefetch, 0))}
}

func quarter(workers int) int       { return max(1, workers/4) }
func threeQuarters(workers int) int { return max(1, workers*3/4) }

// pullBatch is how many triggers one pull asks for: the prefetch and the
// workers, but at most 256 of those, so that at thousands of workers the
// triggers buffered in this process (which get no InProgress until they
// start) stay few; the pull is refilled as they are taken.
func (c Config) pullBatch() int { return min(c.Workers, 256) + c.Prefetch }
