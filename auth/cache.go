package auth

// The watch cache: every replica follows the fetched-token bucket, so the
// hot path reads the current token from memory.

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/kvwatch"
)

// Watch follows the shared records until ctx ends, so Current answers from
// memory.
func (m *Manager) Watch(ctx context.Context) error {
	w, err := m.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch fetched tokens: %w", err)
	}
	kvwatch.Follow(ctx, w, m.apply)
	return m.WatchConnections(ctx)
}

// WatchConnections (started by Watch) follows the changes of end users' connections until
// ctx ends: a connection this replica holds in memory is dropped when
// another replica changes it. It reads no record (a bucket may hold
// millions): only the keys and revisions of changes from now on.
func (m *Manager) WatchConnections(ctx context.Context) error {
	if m.users == nil {
		return nil
	}
	w, err := m.users.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return fmt.Errorf("watch connections: %w", err)
	}
	kvwatch.Follow(ctx, w, func(e jetstream.KeyValueEntry) {
		m.dropOAuth(e.Key(), e.Revision())
		m.notify()
	})
	return nil
}

// apply takes one change of the bucket: a fetched token, an oauth2
// connection record, or a lease or failure record (which only wakes
// waiters).
func (m *Manager) apply(e jetstream.KeyValueEntry) {
	id, ok := strings.CutPrefix(e.Key(), fetchedKeyPrefix)
	switch {
	case strings.HasPrefix(e.Key(), oauth2KeyPrefix):
		m.applyOAuth(e)
	case !ok:
		m.notify()
	case e.Operation() != jetstream.KeyValuePut:
		m.mu.Lock()
		delete(m.current, id)
		m.mu.Unlock()
		m.notify()
	default:
		if f, err := m.decode(id, e.Value(), e.Revision()); err == nil {
			m.remember(id, f)
		}
	}
}

func (m *Manager) notify() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// remember keeps f as the current token of id unless a newer one is known.
func (m *Manager) remember(id string, f *Fetched) {
	m.mu.Lock()
	if cur := m.current[id]; cur == nil || f.Revision > cur.Revision {
		m.current[id] = f
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

func (m *Manager) cached(id string) (*Fetched, chan struct{}) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.current[id], m.changed
}
