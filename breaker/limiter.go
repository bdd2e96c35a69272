package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// How the limits are enforced across replicas:
//
//   - Rate: one token bucket per action in KV ("rate.<action id>": tokens
//     and the time they were counted), refilled at Rate up to Burst. A
//     replica takes permits from it in small chunks (a twentieth of a
//     second's worth, at least one) by compare-and-set and spends them
//     locally, so the shared bucket sees a few writes per second, not one
//     per call; over any 10 s the fleet makes at most Rate x 10 + Burst
//     calls plus one chunk per replica.
//   - Concurrency: one record per action in KV ("conc.<action id>") with
//     each replica's calls in flight and a lease; a call takes a slot by
//     compare-and-set when the sum is below MaxConcurrent. A replica renews
//     its lease while it holds slots, so a crashed replica's slots free
//     themselves when its lease lapses.
//
// When KV cannot be reached the limits fail open, like the breaker.

// ErrLimited is returned by Acquire when ctx ended before the action's
// limits gave a permit.
var ErrLimited = errors.New("the action's limits gave no permit in time")

// concLease is how long a replica's slots count without renewal.
const concLease = 30 * time.Second

type ratePool struct {
	mu      sync.Mutex // one claim at a time per action in this process
	permits int
}

// rateRecord counts time in microseconds: with milliseconds every claim
// gained up to a millisecond of refill, measured as +11 % at 200/s on 3
// replicas.
type rateRecord struct {
	Tokens float64 `json:"tokens"`
	AtUS   int64   `json:"at_us"`
}

type concRecord struct {
	Holders map[string]concHolder `json:"holders"`
}

type concHolder struct {
	N       int   `json:"n"`
	UntilMS int64 `json:"until_ms"`
}

// Acquire waits until the action's limits allow one more call, or ctx
// ends (ErrLimited). release gives the concurrency slot back; call it once
// the call ended. An action without limits returns at once.
func (b *Breaker) Acquire(ctx context.Context, actionID string) (release func(), err error) {
	l, ok := b.GetLimits(actionID)
	if !ok || (l.Rate <= 0 && l.MaxConcurrent <= 0) {
		return func() {}, nil
	}
	if l.Rate > 0 {
		if err := b.takeRate(ctx, actionID, l); err != nil {
			return nil, err
		}
	}
	if l.MaxConcurrent > 0 {
		if err := b.takeSlot(ctx, actionID, l.MaxConcurrent); err != nil {
			return nil, err
		}
		return sync.OnceFunc(func() { b.releaseSlot(actionID) }), nil
	}
	return func() {}, nil
}

func (b *Breaker) pool(id string) *ratePool {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pools[id]
	if p == nil {
		p = &ratePool{}
		b.pools[id] = p
	}
	return p
}

// takeRate spends one permit of the action's rate, claiming a chunk from
// the shared bucket when the local pool is empty.
func (b *Breaker) takeRate(ctx context.Context, id string, l Limits) error {
	p := b.pool(id)
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrLimited, ctx.Err())
		}
		p.mu.Lock()
		if p.permits > 0 {
			p.permits--
			p.mu.Unlock()
			return nil
		}
		got, wait, err := b.claimRate(ctx, id, l)
		if err != nil {
			p.mu.Unlock()
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrLimited, ctx.Err())
			}
			b.onError(id, err)
			return nil // KV unreachable: fail open
		}
		if got > 0 {
			p.permits += got - 1
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		if !sleep(ctx, wait) {
			return fmt.Errorf("%w: %w", ErrLimited, ctx.Err())
		}
	}
}

// claimRate takes up to a chunk of permits from the shared bucket; with
// none left it says how long until one is there.
func (b *Breaker) claimRate(ctx context.Context, id string, l Limits) (int, time.Duration, error) {
	chunk := max(1, int(l.Rate/20))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var got int
	var wait time.Duration
	_, err := updateRecord(ctx, b.kv, rateKeyPrefix+id, 20, func(rec *rateRecord) bool {
		// An absent record (time zero) refills to the burst.
		now := b.now()
		elapsed := max(0, now.Sub(time.UnixMicro(rec.AtUS)).Seconds())
		rec.Tokens = math.Min(float64(l.Burst), rec.Tokens+elapsed*l.Rate)
		rec.AtUS = now.UnixMicro()
		got, wait = 0, 0
		if rec.Tokens < 1 {
			wait = time.Duration((1 - rec.Tokens) / l.Rate * float64(time.Second))
			return false
		}
		got = min(chunk, int(rec.Tokens))
		rec.Tokens -= float64(got)
		return true
	})
	switch {
	case errors.Is(err, errContended):
		return 0, 10 * time.Millisecond, nil // try again shortly
	case err != nil:
		return 0, 0, fmt.Errorf("claim rate of %s: %w", id, err)
	}
	return got, wait, nil
}

// takeSlot waits for a fleet-wide concurrency slot of the action.
func (b *Breaker) takeSlot(ctx context.Context, id string, limit int) error {
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrLimited, ctx.Err())
		}
		ok, err := b.changeSlots(ctx, id, func(rec *concRecord, now time.Time) bool {
			sum := 0
			for _, h := range rec.Holders {
				sum += h.N
			}
			if sum >= limit {
				return false
			}
			own := rec.Holders[b.holder]
			own.N++
			own.UntilMS = now.Add(concLease).UnixMilli()
			rec.Holders[b.holder] = own
			return true
		})
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", ErrLimited, ctx.Err())
			}
			b.onError(id, err)
			return nil // KV unreachable: fail open
		}
		if ok {
			b.mu.Lock()
			b.slots[id]++
			b.mu.Unlock()
			return nil
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return fmt.Errorf("%w: %w", ErrLimited, ctx.Err())
		}
	}
}

func (b *Breaker) releaseSlot(id string) {
	b.mu.Lock()
	b.slots[id]--
	if b.slots[id] <= 0 {
		delete(b.slots, id)
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.changeSlots(ctx, id, func(rec *concRecord, now time.Time) bool {
		own, ok := rec.Holders[b.holder]
		if !ok {
			return false
		}
		if own.N--; own.N <= 0 {
			delete(rec.Holders, b.holder)
		} else {
			own.UntilMS = now.Add(concLease).UnixMilli()
			rec.Holders[b.holder] = own
		}
		return true
	})
	if err != nil {
		b.onError(id, err)
	}
}

// renewSlots extends this replica's lease on the slots it holds; Watch
// runs it every third of the lease.
func (b *Breaker) renewSlots(ctx context.Context) {
	b.mu.RLock()
	ids := make([]string, 0, len(b.slots))
	for id := range b.slots {
		ids = append(ids, id)
	}
	b.mu.RUnlock()
	for _, id := range ids {
		_, _ = b.changeSlots(ctx, id, func(rec *concRecord, now time.Time) bool {
			own, ok := rec.Holders[b.holder]
			if !ok {
				return false
			}
			own.UntilMS = now.Add(concLease).UnixMilli()
			rec.Holders[b.holder] = own
			return true
		})
	}
}

// changeSlots applies change to the action's concurrency record (expired
// holders dropped) by compare-and-set; change returns false to leave it.
func (b *Breaker) changeSlots(ctx context.Context, id string, change func(rec *concRecord, now time.Time) bool) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	wrote, err := updateRecord(ctx, b.kv, concKeyPrefix+id, 50, func(rec *concRecord) bool {
		now := b.now()
		if rec.Holders == nil {
			rec.Holders = map[string]concHolder{}
		}
		for h, v := range rec.Holders {
			if v.UntilMS < now.UnixMilli() || v.N <= 0 {
				delete(rec.Holders, h)
			}
		}
		return change(rec, now)
	})
	if errors.Is(err, errContended) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("concurrency of %s: %w", id, err)
	}
	return wrote, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
