package webui

// The login lockout: five failed logins from one client address within a
// minute lock that address out for a minute, counted in KV when the
// sessions are (every replica behind one load balancer counts together),
// else in this process.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	maxLoginFailures = 5
	lockoutWindow    = time.Minute
	// loginFailPrefix + a hash of the client address: the times of its
	// recent failed logins (unix ms, a JSON array).
	loginFailPrefix = "webui.login-failures."
)

type lockout interface {
	// recent is the number of failed logins of client in the last minute.
	recent(ctx context.Context, client string, now time.Time) (int, error)
	// fail records a failed login of client.
	fail(ctx context.Context, client string, now time.Time) error
}

// memLockout counts in this process.
type memLockout struct {
	mu sync.Mutex
	m  map[string][]time.Time
}

func (l *memLockout) recent(_ context.Context, client string, now time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[client] = slices.DeleteFunc(l.m[client], func(t time.Time) bool { return now.Sub(t) > lockoutWindow })
	if len(l.m[client]) == 0 {
		delete(l.m, client)
	}
	return len(l.m[client]), nil
}

func (l *memLockout) fail(_ context.Context, client string, now time.Time) error {
	l.mu.Lock()
	l.m[client] = append(l.m[client], now)
	l.mu.Unlock()
	return nil
}

// kvLockout counts in the sessions' bucket, one key per client address,
// changed by compare-and-set.
type kvLockout struct{ kv KV }

func failKey(client string) string {
	sum := sha256.Sum256([]byte(client))
	return loginFailPrefix + hex.EncodeToString(sum[:12])
}

func (l kvLockout) read(ctx context.Context, client string, now time.Time) ([]int64, uint64, error) {
	e, err := l.kv.Get(ctx, failKey(client))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var times []int64
	_ = json.Unmarshal(e.Value(), &times) // unreadable: counts as none
	cut := now.Add(-lockoutWindow).UnixMilli()
	return slices.DeleteFunc(times, func(t int64) bool { return t < cut }), e.Revision(), nil
}

func (l kvLockout) recent(ctx context.Context, client string, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	times, _, err := l.read(ctx, client, now)
	return len(times), err
}

func (l kvLockout) fail(ctx context.Context, client string, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	for range 5 {
		times, rev, err := l.read(ctx, client, now)
		if err != nil {
			return err
		}
		data, _ := json.Marshal(append(times, now.UnixMilli()))
		if rev == 0 {
			_, err = l.kv.Create(ctx, failKey(client), data)
		} else {
			_, err = l.kv.Update(ctx, failKey(client), data, rev)
		}
		if err == nil || !(errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)) {
			return err
		}
	}
	return errors.New("login failures: too many concurrent updates")
}
