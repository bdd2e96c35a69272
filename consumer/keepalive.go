package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// holds are the triggers the workers are executing, one slot per worker, so
// that one ticker tells JetStream they are being worked on (InProgress)
// instead of a timer per trigger.
type holds struct {
	slots []hold
}

type hold struct {
	mu     sync.Mutex
	msg    jetstream.Msg
	pinged time.Time // start, then the last InProgress
}

func newHolds(workers int) *holds { return &holds{slots: make([]hold, workers)} }

// take records that worker w executes msg from now on.
func (h *holds) take(w int, msg jetstream.Msg, now time.Time) {
	s := &h.slots[w]
	s.mu.Lock()
	s.msg, s.pinged = msg, now
	s.mu.Unlock()
}

// release records that worker w is done with its trigger.
func (h *holds) release(w int) {
	s := &h.slots[w]
	s.mu.Lock()
	s.msg = nil
	s.mu.Unlock()
}

// keepAlive sends InProgress for every trigger held for every/2 or longer
// since its start or last InProgress, every every/2, until ctx ends; so no
// held trigger goes longer than every without one. every is a third of
// AckWait. tick, when set, runs at each tick too.
func (h *holds) keepAlive(ctx context.Context, every time.Duration, tick func(at time.Time)) {
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		for i := range h.slots {
			s := &h.slots[i]
			s.mu.Lock()
			if s.msg != nil && at.Sub(s.pinged) >= every/2 {
				_ = s.msg.InProgress()
				s.pinged = at
			}
			s.mu.Unlock()
		}
		if tick != nil {
			tick(at)
		}
	}
}
