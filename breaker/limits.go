package breaker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/kvwatch"
)

// Keys of the limits an admin sets per action, and of the shared state
// that enforces them, in the breakers bucket (an action id has no dot, so
// none clashes with a breaker's key).
const (
	limitsKeyPrefix = "limits."
	rateKeyPrefix   = "rate."
	concKeyPrefix   = "conc."
)

// Limits are what an admin allows one action across every replica: Rate
// calls per second with bursts of up to Burst, and at most MaxConcurrent
// calls at once. A zero Rate or MaxConcurrent is no limit.
type Limits struct {
	ActionID      string  `json:"action_id"`
	Rate          float64 `json:"rate"`
	Burst         int     `json:"burst"`
	MaxConcurrent int     `json:"max_concurrent"`
	UpdatedAt     string  `json:"updated_at,omitempty"`
}

// ErrInvalidLimits is wrapped by the errors of Limits.Validate.
var ErrInvalidLimits = errors.New("invalid limits")

// Validate reports what is wrong with l; it fills Burst (the rate rounded
// up, at least 1) when a rate has none.
func (l *Limits) Validate() error {
	switch {
	case math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Rate < 0 || l.Rate > 100000:
		return fmt.Errorf("%w: rate %v must be from 0 (no limit) to 100000 calls per second", ErrInvalidLimits, l.Rate)
	case l.Burst < 0 || l.Burst > 100000:
		return fmt.Errorf("%w: burst %d must be from 0 to 100000", ErrInvalidLimits, l.Burst)
	case l.MaxConcurrent < 0 || l.MaxConcurrent > 100000:
		return fmt.Errorf("%w: max_concurrent %d must be from 0 (no limit) to 100000", ErrInvalidLimits, l.MaxConcurrent)
	}
	if l.Rate > 0 && l.Burst == 0 {
		l.Burst = max(1, int(math.Ceil(l.Rate)))
	}
	return nil
}

// SetLimits stores the limits of an action for every replica.
func (b *Breaker) SetLimits(ctx context.Context, l Limits) (Limits, error) {
	if err := l.Validate(); err != nil {
		return Limits{}, err
	}
	l.UpdatedAt = b.now().UTC().Format(time.RFC3339Nano)
	data, _ := json.Marshal(l)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := b.limitsKV().Put(ctx, limitsKeyPrefix+l.ActionID, data); err != nil {
		return Limits{}, fmt.Errorf("set limits of %s: %w", l.ActionID, err)
	}
	b.rememberLimits(l.ActionID, &l)
	return l, nil
}

// GetLimits returns the limits of an action, from memory; ok is false
// when it has none.
func (b *Breaker) GetLimits(actionID string) (Limits, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	l, ok := b.limits[actionID]
	if !ok {
		return Limits{ActionID: actionID}, false
	}
	return *l, true
}

// ListLimits returns every action's limits, sorted by action id, read
// from KV.
func (b *Breaker) ListLimits(ctx context.Context) ([]Limits, error) {
	out, err := kvwatch.Collect(ctx, b.kv, func(e jetstream.KeyValueEntry) (Limits, bool) {
		var l Limits
		return l, strings.HasPrefix(e.Key(), limitsKeyPrefix) && json.Unmarshal(e.Value(), &l) == nil
	})
	if err != nil {
		return nil, fmt.Errorf("list limits: %w", err)
	}
	slices.SortFunc(out, func(a, c Limits) int { return cmp.Compare(a.ActionID, c.ActionID) })
	return out, nil
}

// DeleteLimits removes the limits of an action; it reports whether there
// were any.
func (b *Breaker) DeleteLimits(ctx context.Context, actionID string) (bool, error) {
	_, had := b.GetLimits(actionID)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := b.kv.Get(ctx, limitsKeyPrefix+actionID); errors.Is(err, jetstream.ErrKeyNotFound) {
		return had, nil
	}
	if err := b.limitsKV().Delete(ctx, limitsKeyPrefix+actionID); err != nil {
		return false, fmt.Errorf("delete limits of %s: %w", actionID, err)
	}
	b.rememberLimits(actionID, nil)
	return true, nil
}

// limitsKV is the bucket with Put and Delete (jetstream.KeyValue has
// them; the breaker's own KV interface needs only compare-and-set).
func (b *Breaker) limitsKV() interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
} {
	if kv, ok := b.kv.(interface {
		Put(ctx context.Context, key string, value []byte) (uint64, error)
		Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
	}); ok {
		return kv
	}
	return noPutKV{}
}

type noPutKV struct{}

func (noPutKV) Put(context.Context, string, []byte) (uint64, error) {
	return 0, errors.New("the breakers bucket does not allow limits")
}
func (noPutKV) Delete(context.Context, string, ...jetstream.KVDeleteOpt) error {
	return errors.New("the breakers bucket does not allow limits")
}

// applyLimits takes a limits record from the watch; it reports whether
// the key was one (or the shared state of one).
func (b *Breaker) applyLimits(e jetstream.KeyValueEntry) bool {
	key := e.Key()
	if strings.HasPrefix(key, rateKeyPrefix) || strings.HasPrefix(key, concKeyPrefix) {
		return true // shared counters, read where used
	}
	id, ok := strings.CutPrefix(key, limitsKeyPrefix)
	if !ok {
		return false
	}
	var l Limits
	if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &l) == nil {
		b.rememberLimits(id, &l)
	} else {
		b.rememberLimits(id, nil)
	}
	return true
}

func (b *Breaker) rememberLimits(id string, l *Limits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l == nil {
		delete(b.limits, id)
		return
	}
	b.limits[id] = l
}
