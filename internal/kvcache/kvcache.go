// Package kvcache is the bounded cache of KV records that replicas keep
// instead of whole buckets: a replica holds the records it used lately (a
// bucket may hold a hundred thousand tokens or breakers, or a million
// connections), and a keys-only watch of the bucket drops what another
// replica changed.
package kvcache

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/kvwatch"
)

// DefaultSize is how many records of one kind a replica keeps in memory
// by default.
const DefaultSize = 10000

// Cache maps keys to decoded records and their KV revisions, at most max
// of them; a new key replaces any one (map order is random) when full.
//
// A record read from KV while the watch reports a newer change of its key
// must not be cached after that change was applied (it would stay stale
// until the next change): invalidate remembers the revisions of recent
// changes, and Add refuses a record older than one of them. When that
// memory is full it is cleared and its epoch moves on; an Add whose read
// began in an earlier epoch is then refused too.
type Cache[T any] struct {
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

// New returns a Cache of at most max records (DefaultSize when max <= 0).
func New[T any](max int) *Cache[T] {
	if max <= 0 {
		max = DefaultSize
	}
	return &Cache[T]{max: max, items: map[string]cached[T]{}, inval: map[string]uint64{}}
}

// Get returns the record of key and its revision.
func (c *Cache[T]) Get(key string) (v T, rev uint64, ok bool) {
	c.mu.Lock()
	it, ok := c.items[key]
	c.mu.Unlock()
	return it.v, it.rev, ok
}

// Begin is called before a read from KV whose record will be added: its
// result goes to Add.
func (c *Cache[T]) Begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// Add keeps v (revision rev, read in epoch) unless a newer record of key is
// cached or a newer change of key was seen since.
func (c *Cache[T]) Add(key string, v T, rev, epoch uint64) bool {
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

// Put keeps v, written by this replica at revision rev.
func (c *Cache[T]) Put(key string, v T, rev uint64) { c.Add(key, v, rev, c.Begin()) }

// Invalidate takes a change of key at revision rev from the watch: an
// older cached record is dropped.
func (c *Cache[T]) Invalidate(key string, rev uint64) {
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

// Drop forgets key whatever its revision (this replica deleted it).
func (c *Cache[T]) Drop(key string) {
	c.mu.Lock()
	delete(c.items, key)
	c.mu.Unlock()
}

// Each calls f with every record held (under the cache's lock: f must not
// call the cache).
func (c *Cache[T]) Each(f func(key string, v T)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, it := range c.items {
		f(k, it.v)
	}
}

// Len is the number of records held.
func (c *Cache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Watcher is the part of a KV bucket FollowKeys needs; jetstream.KeyValue
// satisfies it.
type Watcher interface {
	Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// FollowKeys watches the changes of the keys of kv matching keys (">" for
// all) from now on, keys and revisions only (no value, no initial load),
// and hands each to onChange until ctx ends.
func FollowKeys(ctx context.Context, kv Watcher, keys, what string, onChange func(jetstream.KeyValueEntry)) error {
	w, err := kv.Watch(ctx, keys, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", what, err)
	}
	kvwatch.Follow(ctx, w, onChange)
	return nil
}
