package consumer

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

// bulkhead bounds how many triggers of one action this process executes at
// once (resilience4j's bulkhead), so that one slow or hanging API cannot
// take every worker. A trigger of an action at its bound is parked: it
// holds no worker and is not nak'ed (a nak would count against
// MaxDeliver); the worker that finishes a trigger of that action runs the
// next parked one. Parked triggers are kept alive with InProgress like
// running ones.
type bulkhead struct {
	limit int

	mu      sync.Mutex
	running map[string]int
	parked  map[string][]*pending
	closed  bool
}

// pending is a decoded trigger on its way through the flow.
type pending struct {
	msg     jetstream.Msg
	meta    *jetstream.MsgMetadata
	r       *run
	started time.Time
	t       *events.Trigger
	// pinged is when the trigger was parked or last reported InProgress.
	pinged time.Time
}

func newBulkhead(limit int) *bulkhead {
	return &bulkhead{limit: limit, running: map[string]int{}, parked: map[string][]*pending{}}
}

// What enter did with a trigger.
type admission int

const (
	admitted admission = iota // p holds a slot of its action
	parked                    // p waits for one
	closed                    // shutting down: p is the caller's to hand back
	full                      // maxParked triggers of the action wait already
)

// enter takes a slot of action for p, or parks p unless maxParked (when
// not negative) triggers of the action are parked already.
func (b *bulkhead) enter(action string, p *pending, now time.Time, maxParked int) admission {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.running[action] < b.limit:
		b.running[action]++
		return admitted
	case b.closed:
		return closed
	case maxParked >= 0 && len(b.parked[action]) >= maxParked:
		return full
	}
	p.pinged = now
	b.parked[action] = append(b.parked[action], p)
	return parked
}

// leave frees the slot of a finished trigger of action; when a trigger of
// action is parked, the slot passes to it and it is returned for the
// caller to run.
func (b *bulkhead) leave(action string) *pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q := b.parked[action]; len(q) > 0 && !b.closed {
		next := q[0]
		q[0] = nil
		if len(q) == 1 {
			delete(b.parked, action)
		} else {
			b.parked[action] = q[1:]
		}
		return next
	}
	if b.running[action]--; b.running[action] <= 0 {
		delete(b.running, action)
	}
	return nil
}

// take removes the parked live triggers of the actions for which open
// reports true (their breaker is open: they will not call, so they need no
// slot). Test triggers bypass the breaker and stay parked.
func (b *bulkhead) take(open func(action string) bool) []*pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*pending
	for action, q := range b.parked {
		if !open(action) {
			continue
		}
		kept := q[:0]
		for _, p := range q {
			if p.t.Live() {
				out = append(out, p)
			} else {
				kept = append(kept, p)
			}
		}
		clear(q[len(kept):])
		if len(kept) == 0 {
			delete(b.parked, action)
		} else {
			b.parked[action] = kept
		}
	}
	return out
}

// keepAlive reports InProgress for parked triggers not reported for
// every/2 or longer.
func (b *bulkhead) keepAlive(at time.Time, every time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, q := range b.parked {
		for _, p := range q {
			if at.Sub(p.pinged) >= every/2 {
				_ = p.msg.InProgress()
				p.pinged = at
			}
		}
	}
}

// close stops parking and returns the parked triggers, for the caller to
// hand back to JetStream.
func (b *bulkhead) close() []*pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	var out []*pending
	for action, q := range b.parked {
		out = append(out, q...)
		delete(b.parked, action)
	}
	return out
}

// parkedCount is the number of parked triggers (for metrics and tests).
func (b *bulkhead) parkedCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, q := range b.parked {
		n += len(q)
	}
	return n
}
