package breaker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// throttleKeyPrefix marks the throttle record of an action in the
// breakers bucket ("throttle.<action id>"; an action id has no dot, so it
// cannot clash with a breaker's key).
const throttleKeyPrefix = "throttle."

// throttleRecord is an action's pause asked for by its API (429 or 503
// with Retry-After), shared by every replica.
type throttleRecord struct {
	UntilMS int64  `json:"until_ms"`
	Status  int    `json:"http_status"`
	By      string `json:"by"`
}

// Throttle is one change of an action's throttle, reported by the replica
// that made it.
type Throttle struct {
	ActionID string
	// Until is when calls may resume; zero when the throttle ended.
	Until  time.Time
	Status int
}

// OnThrottle is called after this replica throttled an action (Until set)
// and when a throttle it set ended (Until zero).
func OnThrottle(f func(Throttle)) Option { return func(b *Breaker) { b.onThrottle = f } }

// ThrottledUntil returns, from memory, until when calls of the action are
// held back fleet-wide, or the zero time.
func (b *Breaker) ThrottledUntil(actionID string) time.Time {
	b.mu.RLock()
	until := b.throttles[actionID]
	b.mu.RUnlock()
	if until.After(b.now()) {
		return until
	}
	return time.Time{}
}

// Throttle holds back calls of an action on every replica until until,
// unless a later pause is recorded already. The replica whose write
// lengthened the pause reports it to OnThrottle, and its end too.
func (b *Breaker) Throttle(ctx context.Context, actionID string, until time.Time, status int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	wrote, err := updateRecord(ctx, b.kv, throttleKeyPrefix+actionID, 10, func(rec *throttleRecord) bool {
		if rec.UntilMS >= until.UnixMilli() {
			b.rememberThrottle(actionID, time.UnixMilli(rec.UntilMS))
			return false // a pause as long or longer is recorded
		}
		*rec = throttleRecord{UntilMS: until.UnixMilli(), Status: status, By: b.holder}
		return true
	})
	if err != nil {
		return fmt.Errorf("throttle %s: %w", actionID, err)
	}
	if !wrote {
		return nil
	}
	b.rememberThrottle(actionID, until)
	b.onThrottle(Throttle{ActionID: actionID, Until: until, Status: status})
	time.AfterFunc(time.Until(until), func() {
		if b.ThrottledUntil(actionID).IsZero() {
			b.onThrottle(Throttle{ActionID: actionID, Status: status})
		}
	})
	return nil
}

// applyThrottle takes a throttle record from the watch; it reports
// whether the key was one.
func (b *Breaker) applyThrottle(e jetstream.KeyValueEntry) bool {
	id, ok := strings.CutPrefix(e.Key(), throttleKeyPrefix)
	if !ok {
		return false
	}
	var rec throttleRecord
	if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &rec) == nil {
		b.rememberThrottle(id, time.UnixMilli(rec.UntilMS))
	}
	return true
}

func (b *Breaker) rememberThrottle(id string, until time.Time) {
	b.mu.Lock()
	if until.After(b.throttles[id]) {
		b.throttles[id] = until
	}
	b.mu.Unlock()
}
