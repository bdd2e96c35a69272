package webui

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KV is what the shared sessions need of a JetStream key-value bucket;
// jetstream.KeyValue satisfies it.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
	Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// WithSessionStore keeps the session signing key and the sessions in kv
// (the breakers bucket), so every replica over the bucket accepts the same
// logins, a logout ends a session on all of them, and a restart keeps
// them. Without it, sessions live in this process's memory.
func WithSessionStore(kv KV) Option {
	return func(s *Server) {
		st := &kvStore{kv: kv}
		s.sessions = &sessions{store: st, loadKey: st.signingKey}
		s.lock = kvLockout{kv: kv}
	}
}

// Keys of the sessions in the bucket. They have a dot, which action ids
// never have, and their values are not JSON objects, so the breaker never
// takes them for the state of an action.
const (
	sessionKeyKey    = "webui.session-key" // hex of the HMAC key of the cookies
	sessionKeyPrefix = "webui.session."    // + session id: expiry, in unix seconds
)

// kvTimeout bounds each KV operation of the sessions.
const kvTimeout = 5 * time.Second

// kvStore keeps the sessions in a KV bucket: one key per session, deleted
// at logout; expired ones are deleted when next presented or by the sweep
// at each login.
type kvStore struct{ kv KV }

// signingKey reads the shared signing key, or creates it if absent: the
// first replica to create it wins and the others read its key.
func (k *kvStore) signingKey(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	for range 3 {
		e, err := k.kv.Get(ctx, sessionKeyKey)
		if err == nil {
			key, err := hex.DecodeString(string(e.Value()))
			if err != nil || len(key) < 32 {
				return nil, fmt.Errorf("session signing key %s: not 32 hex-encoded bytes", sessionKeyKey)
			}
			return key, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("read session signing key: %w", err)
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		_, err = k.kv.Create(ctx, sessionKeyKey, []byte(hex.EncodeToString(key)))
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("create session signing key: %w", err)
		}
		// Another replica created it first: read theirs.
	}
	return nil, fmt.Errorf("session signing key %s: created and deleted concurrently", sessionKeyKey)
}

func (k *kvStore) add(ctx context.Context, id string, exp, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	if err := k.sweep(ctx, now); err != nil {
		return err
	}
	if _, err := k.kv.Create(ctx, sessionKeyPrefix+id, []byte(strconv.FormatInt(exp.Unix(), 10))); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

func (k *kvStore) expiry(ctx context.Context, id string) (time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	e, err := k.kv.Get(ctx, sessionKeyPrefix+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read session: %w", err)
	}
	exp, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return time.Time{}, false, nil
	}
	return time.Unix(exp, 0), true, nil
}

func (k *kvStore) remove(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	if err := k.kv.Delete(ctx, sessionKeyPrefix+id); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// sweep deletes the expired sessions, and the ones closest to their expiry
// while maxSessions or more are live.
func (k *kvStore) sweep(ctx context.Context, now time.Time) error {
	w, err := k.kv.Watch(ctx, sessionKeyPrefix+"*", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	defer func() { _ = w.Stop() }()
	type session struct {
		key string
		exp int64
	}
	var live []session
	for loaded := false; !loaded; {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return fmt.Errorf("list sessions: %w", ctx.Err())
		case e = <-w.Updates():
		}
		if e == nil {
			loaded = true
			continue
		}
		exp, err := strconv.ParseInt(string(e.Value()), 10, 64)
		if err != nil || exp <= now.Unix() {
			if err := k.kv.Delete(ctx, e.Key()); err != nil {
				return fmt.Errorf("delete expired session: %w", err)
			}
			continue
		}
		live = append(live, session{e.Key(), exp})
	}
	slices.SortFunc(live, func(a, b session) int { return cmp.Compare(a.exp, b.exp) })
	for _, s := range live[:max(0, len(live)-maxSessions+1)] {
		if err := k.kv.Delete(ctx, s.key); err != nil {
			return fmt.Errorf("delete oldest session: %w", err)
		}
	}
	return nil
}
