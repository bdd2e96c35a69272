package auth

// The cache of the fetched-token bucket: a replica holds the records it
// used lately, and a keys-only watch drops those another replica changed,
// so the hot path reads a token used in the last minutes from memory.

import (
	"context"
	"customactions/internal/kvcache"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Watch follows the keys of the shared records' changes until ctx ends: a
// record held in memory that another replica changed is dropped (and read
// again on its next use), and waiters for a refresh wake up. Nothing is
// read at start-up: the bucket may hold a hundred thousand records.
func (m *Manager) Watch(ctx context.Context) error {
	if err := kvcache.FollowKeys(ctx, m.kv, ">", "fetched tokens", m.apply); err != nil {
		return err
	}
	return m.WatchConnections(ctx)
}

// apply takes one change of the bucket: a fetched token, an oauth2
// connection record, or a lease or failure record (which only wakes
// waiters).
func (m *Manager) apply(e jetstream.KeyValueEntry) {
	switch key := e.Key(); {
	case strings.HasPrefix(key, oauth2KeyPrefix):
		m.dropOAuth(strings.TrimPrefix(key, oauth2KeyPrefix), e.Revision())
	case strings.HasPrefix(key, fetchedKeyPrefix):
		m.current.Invalidate(strings.TrimPrefix(key, fetchedKeyPrefix), e.Revision())
	}
	m.notify()
}

func (m *Manager) notify() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// remember keeps f as the current token of id unless a newer one is known.
func (m *Manager) remember(id string, f *Fetched) {
	m.current.Put(id, f, f.Revision)
	m.notify()
}

func (m *Manager) cached(id string) (*Fetched, chan struct{}) {
	f, _, _ := m.current.Get(id)
	m.mu.RLock()
	defer m.mu.RUnlock()
	return f, m.changed
}

// WatchConnections (started by Watch) follows the changes of end users'
// connections until ctx ends: a connection this replica holds in memory is
// dropped when another replica changes it. It reads no record (a bucket
// may hold millions): only the keys and revisions of changes from now on.
func (m *Manager) WatchConnections(ctx context.Context) error {
	if m.users == nil {
		return nil
	}
	return kvcache.FollowKeys(ctx, m.users, ">", "connections", func(e jetstream.KeyValueEntry) {
		m.dropOAuth(e.Key(), e.Revision())
		m.notify()
	})
}
