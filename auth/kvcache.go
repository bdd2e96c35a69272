package auth

// The bounded cache of KV records that the Store and the Manager keep: a
// replica holds the records it used lately, not whole buckets (a bucket may
// hold a hundred thousand tokens or a million connections), and a
// keys-only watch of the bucket drops what another replica changed.

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/kvwatch"
)

// DefaultCacheSize is how many records of one kind a replica keeps in
// memory by default.
const DefaultCacheSize = 10000

// kvCache maps keys to decoded records and their KV revisions, at most max
// of them; a new key replaces any one (map order is random) when full.
//
// A record read from KV while the watch reports a newer change of its key
// must not be cached after that change was applied (it would stay stale
// until the next change): invalidate remembers the revisions of recent
// changes, and add refuses a record older than one of them. When that
// memory is full it is cleared and its epoch moves on; an add whose read
// began in an earlier epoch is then refused too.
type kvCache[T any] struct {
	mu    sync.Mutex
	max   int
	items map[string]cached[T]
	inval map[string]uint64
	epoch uint64
}

type cached[T any] struct {
	v   T
	rev uint64
}

func newKVCache[T any](max int) *kvCache[T] {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &kvCache[T]{max: max, items: map[string]cached[T]{}, inval: map[string]uint64{}}
}

// get returns the record of key and its revision.
func (c *kvCache[T]) get(key string) (v T, rev uint64, ok bool) {
	c.mu.Lock()
	it, ok := c.items[key]
	c.mu.Unlock()
	return it.v, it.rev, ok
}

// begin is called before a read from KV whose record will be added: its
// result goes to add.
func (c *kvCache[T]) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// add keeps v (revision rev, read in epoch) unless a newer record of key is
// cached or a newer change of key was seen since.
func (c *kvCache[T]) add(key string, v T, rev, epoch uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch || c.inval[key] > rev {
		return false
	}
	if cur, ok := c.items[key]; ok {
		if cur.rev > rev {
			return false
		}
	} else if len(c.items) >= c.max {
		for k := range c.items {
			delete(c.items, k)
			break
		}
	}
	c.items[key] = cached[T]{v: v, rev: rev}
	return true
}

// put keeps v, written by this replica at revision rev.
func (c *kvCache[T]) put(key string, v T, rev uint64) { c.add(key, v, rev, c.begin()) }

// invalidate takes a change of key at revision rev from the watch: an
// older cached record is dropped.
func (c *kvCache[T]) invalidate(key string, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.items[key]; ok && it.rev < rev {
		delete(c.items, key)
	}
	if len(c.inval) >= 4*c.max {
		clear(c.inval)
		c.epoch++
	}
	if c.inval[key] < rev {
		c.inval[key] = rev
	}
}

// drop forgets key whatever its revision (this replica deleted it).
func (c *kvCache[T]) drop(key string) {
	c.mu.Lock()
	delete(c.items, key)
	c.mu.Unlock()
}

// len is the number of records held.
func (c *kvCache[T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// followKeys watches the changes of kv from now on, keys and revisions
// only (no value, no initial load), and hands each to onChange until ctx
// ends.
func followKeys(ctx context.Context, kv KV, what string, onChange func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", what, err)
	}
	kvwatch.Follow(ctx, w, onChange)
	return nil
}
