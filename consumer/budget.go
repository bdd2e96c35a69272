package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// smallResponse is how much of a response a call reads without taking
// from the response memory budget: most answers are smaller, and a call
// that holds no budget cannot wait on one that does.
const smallResponse = 64 << 10

// errNoResponseMemory: the response memory budget stayed taken until the
// call's timeout.
var errNoResponseMemory = errors.New("the response is large and the response memory budget (ACTIONS_RESPONSE_MEMORY) stayed in use by other large responses until the timeout")

// responseBudget bounds the bytes that large responses hold at once across
// all workers (golang.org/x/sync/semaphore: weighted, FIFO, with a
// context). A large response takes its whole weight at once, so no call
// holds part of the budget while it waits for the rest.
type responseBudget struct {
	sem   *semaphore.Weighted
	total int64
	// held and peak are the bytes taken now and at most (for tests and
	// measurements).
	held, peak atomic.Int64
}

func newResponseBudget(total int64) *responseBudget {
	return &responseBudget{sem: semaphore.NewWeighted(total), total: total}
}

// take waits for n bytes of the budget (at most all of it) and returns
// what gives them back.
func (b *responseBudget) take(ctx context.Context, n int64) (func(), error) {
	n = min(n, b.total)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoResponseMemory, err)
	}
	if h := b.held.Add(n); h > b.peak.Load() {
		b.peak.Store(h) // racy max, good enough for a high-water mark
	}
	return func() { b.held.Add(-n); b.sem.Release(n) }, nil
}

// largeResponseWeight is what one large response may hold until its
// result is stored: the body as read, its string copy and its redacted
// copy (3 x ResponseBodyCap), and the encoded result (at most the
// server's max payload, and at most 6 bytes per body byte).
func (s *Service) largeResponseWeight() int64 {
	return 3*s.cfg.ResponseBodyCap + min(int64(s.maxResult), 6*s.cfg.ResponseBodyCap+smallResponse)
}
