package auth

// The single flight: callers in one process that need the same token share
// one refresh. HTTP Request tokens (a *Fetched) and oauth2 tokens (an
// *oauthConn) use the same flights.

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// flight is one refresh of a token under way in this process.
type flight[T any] struct {
	done    chan struct{}
	res     T
	fetched bool // the refresh made the auth request itself
	err     error
}

// flights are the refreshes under way in this process, by token id.
type flights[T any] struct {
	mu sync.Mutex
	m  map[string]*flight[T]
}

// start joins the flight of id, or starts one that runs refresh under its
// own deadline (a caller that gives up does not end the others' refresh);
// started is true for the caller that started it.
func (fs *flights[T]) start(id string, timeout time.Duration, refresh func(ctx context.Context) (T, bool, error)) (fl *flight[T], started bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fl := fs.m[id]; fl != nil {
		return fl, false
	}
	if fs.m == nil {
		fs.m = map[string]*flight[T]{}
	}
	fl = &flight[T]{done: make(chan struct{})}
	fs.m[id] = fl
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		fl.res, fl.fetched, fl.err = refresh(ctx)
		fs.mu.Lock()
		delete(fs.m, id)
		fs.mu.Unlock()
		close(fl.done)
	}()
	return fl, true
}

// wait returns when no flight is under way, or with ctx's error when ctx
// ends first.
func (fs *flights[T]) wait(ctx context.Context) error {
	for {
		fs.mu.Lock()
		var fl *flight[T]
		for _, f := range fs.m {
			fl = f
			break
		}
		fs.mu.Unlock()
		if fl == nil {
			return nil
		}
		select {
		case <-fl.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// await waits for fl and says what it gave a caller that needs a token
// newer than the one it had (newer reports that): the token and how it was
// obtained (done), or nothing when the flight answered for an older token
// and the caller must go again.
func await[T any](ctx context.Context, id string, fl *flight[T], leader bool, newer func(T) bool) (res T, oc Outcome, done bool, err error) {
	select {
	case <-fl.done:
	case <-ctx.Done():
		return res, Outcome{Waited: true}, true, fmt.Errorf("wait for token %s: %w", id, ctx.Err())
	}
	if fl.err != nil {
		return res, Outcome{Waited: true, Fetched: leader}, true, fl.err
	}
	if newer(fl.res) {
		return fl.res, Outcome{Waited: true, Fetched: leader && fl.fetched}, true, nil
	}
	return res, Outcome{}, false, nil
}

// inBackground reports to bg the outcome of a proactive refresh that the
// caller started and nobody waits for: a failure, or the new token
// (described by refresh) when the flight made the auth request.
func inBackground[T any](id string, fl *flight[T], bg func(Refresh), refresh func(T) *Refresh) {
	go func() {
		<-fl.done
		if fl.err != nil {
			bg(Refresh{TokenID: id, Err: fl.err})
		} else if fl.fetched {
			bg(*refresh(fl.res))
		}
	}()
}

// refreshInBackground starts a proactive refresh unless one is under way,
// and reports its outcome to bg.
func (m *Manager) refreshInBackground(tok *Token, stale uint64, bg func(Refresh)) {
	fl, started := m.startFlight(tok, stale)
	if started && bg != nil {
		inBackground(tok.ID, fl, bg, func(f *Fetched) *Refresh { return f.refresh(tok.ID) })
	}
}

// startFlight joins the refresh of tok in this process or starts one.
func (m *Manager) startFlight(tok *Token, stale uint64) (*flight[*Fetched], bool) {
	return m.flights.start(tok.ID, m.flightTO, func(ctx context.Context) (*Fetched, bool, error) {
		return m.coordinate(ctx, tok, stale)
	})
}
