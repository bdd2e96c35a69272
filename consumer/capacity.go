package consumer

import (
	"context"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// dispatch hands each pulled trigger to a goroutine of its own, at most
// Workers at once, until the iterator is closed (drained at shutdown), and
// returns once those goroutines are done. A worker slot is taken before a
// trigger is pulled, so no trigger waits in this process without one.
// Goroutines exist only for triggers being executed: idle capacity costs
// no stack, and the stack of a trigger waiting on its API is only as deep
// as that call (a long-lived worker kept the deepest stack any of its
// triggers had needed, and the GC scans every stack at every cycle).
func (s *Service) dispatch(work context.Context, msgs jetstream.MessagesContext) {
	slots := make(chan int, s.cfg.Workers)
	// A parent context per slot: the per-trigger contexts under it
	// register with it, not all with one shared parent.
	parents := make([]context.Context, s.cfg.Workers)
	for w := range s.cfg.Workers {
		var cancel context.CancelFunc
		parents[w], cancel = context.WithCancel(work)
		defer cancel()
		slots <- w
	}
	defer func() {
		for range s.cfg.Workers {
			<-slots // every trigger handed out is done
		}
	}()
	for {
		w := <-slots
		msg, err := msgs.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			slots <- w
			return
		}
		if err != nil {
			slots <- w
			s.log.Warn("pull triggers", "err", err)
			continue
		}
		go func() {
			s.handle(parents[w], w, msg)
			slots <- w
		}()
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
// given: 1024 calls in flight, about 5 000 triggers/s at 200 ms. Idle
// workers cost nothing, so the default is a bound, not a reservation.
const DefaultWorkers = 1024

// Sizing is what Size derives from an expected load.
type Sizing struct {
	InFlight          int // calls in flight at the expected rate and latency (Little's law)
	Workers           int // twice InFlight, in steps of 64, at least 64
	ActionConcurrency int // half the workers: one action alone can carry the expected rate
	MaxAckPending     int // 4 x (Workers + prefetch): room for four processes of this size
}

// Size sizes one process for rate triggers/s whose APIs answer in latency
// on average (their tail included), with prefetch triggers pulled ahead:
// by Little's law rate x latency calls are in flight; twice as many
// workers leave room for bursts and a slower tail. CAPACITY.md gives the
// measurements behind it.
func Size(rate float64, latency time.Duration, prefetch int) Sizing {
	inFlight := int(math.Ceil(rate*latency.Seconds() - 1e-9)) // 1e-9: 8000 x 0.265 is 2120, not 2121
	workers := max(64, (2*inFlight+63)/64*64)
	return Sizing{InFlight: inFlight, Workers: workers, ActionConcurrency: workers / 2,
		MaxAckPending: 4 * (workers + max(prefetch, 0))}
}

// pullBatch is how many triggers one pull asks for: the prefetch and the
// workers, but at most 256 of those, so that at thousands of workers the
// triggers buffered in this process (which get no InProgress until they
// start) stay few; the pull is refilled as they are taken.
func (c Config) pullBatch() int { return min(c.Workers, 256) + c.Prefetch }
