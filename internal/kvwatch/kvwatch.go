// Package kvwatch follows a JetStream KV bucket: the token store, the
// fetched-token manager and the breaker each keep a bucket in memory this
// way, so their hot paths make no KV round trip.
package kvwatch

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow hands every entry of w (puts and deletes, first the current values,
// then each change) to onEntry, in a goroutine, until ctx ends or the
// watcher closes; then it stops the watcher. The returned channel is closed
// once the current values have all been handed over (or the loop ended).
func Follow(ctx context.Context, w jetstream.KeyWatcher, onEntry func(jetstream.KeyValueEntry)) <-chan struct{} {
	loaded := make(chan struct{})
	markLoaded := sync.OnceFunc(func() { close(loaded) })
	go func() {
		defer func() { _ = w.Stop() }()
		defer markLoaded()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					markLoaded()
					continue
				}
				onEntry(e)
			}
		}
	}()
	return loaded
}

// Collect reads the current value of every key of kv once, hands each to
// decode and returns what it kept (decode returns false to skip an entry).
// Deleted keys are left out.
func Collect[T any](ctx context.Context, kv interface {
	WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}, decode func(jetstream.KeyValueEntry) (T, bool)) ([]T, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var out []T
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			if v, ok := decode(e); ok {
				out = append(out, v)
			}
		}
	}
}
