package auth

// The refresh lease: one replica at a time fetches a token; the others wait
// for its record, its failure, or the lease to lapse.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

type leaseRecord struct {
	Holder    string `json:"holder"`
	ExpiresAt int64  `json:"expires_at_ms"`
}

// lease is the outcome of trying to take the refresh lease of a token.
type lease struct {
	// held is true when this replica holds the lease; rev is the lease
	// key's revision, for a release that cannot delete a successor's.
	held bool
	rev  uint64
	// until is when another holder's lease lapses (zero when held; now
	// when the lease was just released, to try again at once).
	until time.Time
}

// acquire takes the refresh lease of id, or says until when another
// replica holds it.
func (m *Manager) acquire(ctx context.Context, id string) (lease, error) {
	key := leaseKeyPrefix + id
	now := m.now()
	rec, _ := json.Marshal(leaseRecord{Holder: m.holder, ExpiresAt: now.Add(m.leaseTTL).UnixMilli()})
	rev, err := m.kv.Create(ctx, key, rec)
	if err == nil {
		return lease{held: true, rev: rev}, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return lease{}, fmt.Errorf("take refresh lease of %s: %w", id, err)
	}
	e, err := m.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return lease{until: now}, nil // released meanwhile: try again at once
	}
	if err != nil {
		return lease{}, fmt.Errorf("read refresh lease of %s: %w", id, err)
	}
	var cur leaseRecord
	if json.Unmarshal(e.Value(), &cur) != nil || now.UnixMilli() >= cur.ExpiresAt {
		// The holder died or stalled: take the lease over.
		if rev, err := m.kv.Update(ctx, key, rec, e.Revision()); err == nil {
			return lease{held: true, rev: rev}, nil
		}
		return lease{until: now}, nil
	}
	return lease{until: time.UnixMilli(cur.ExpiresAt)}, nil
}

func (m *Manager) release(id string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.kv.Delete(ctx, leaseKeyPrefix+id, jetstream.LastRevision(rev))
}

// waitForHolder waits until the record of id moves past rev, the holder
// records a failure that happened after start, or the lease lapses.
func (m *Manager) waitForHolder(ctx context.Context, id string, rev uint64, until, start time.Time) error {
	tick := time.NewTicker(m.poll)
	defer tick.Stop()
	for {
		f, changed := m.cached(id)
		if f != nil && f.Revision > rev {
			return nil
		}
		if !m.now().Before(until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the refresh of token %s: %w", id, ctx.Err())
		case <-changed:
		case <-tick.C:
		}
		if err := m.failureSince(ctx, id, start); err != nil {
			return err
		}
		if _, cur, err := m.read(ctx, id); err == nil && cur > rev {
			return nil
		}
	}
}
