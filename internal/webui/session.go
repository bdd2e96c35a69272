package webui

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nuid"
)

const cookieName = "actions_session"

// maxSessions bounds the live sessions: beyond it, logging in drops the
// session closest to its expiry.
const maxSessions = 1000

// sessionStore keeps the live sessions, session id -> expiry: in this
// process (memStore) or in a KV bucket that every replica shares (kvStore).
type sessionStore interface {
	add(ctx context.Context, id string, exp, now time.Time) error
	// expiry returns the expiry of a live session; ok is false when the
	// session does not exist (never did, ended or swept).
	expiry(ctx context.Context, id string) (exp time.Time, ok bool, err error)
	remove(ctx context.Context, id string) error
}

// sessions is the server side of the login: the signed cookie names a
// session id, and only ids in the store are accepted. Logout removes the
// id, so a copied cookie stops working at once.
type sessions struct {
	store sessionStore
	// loadKey returns the signing key when key is not set yet (the shared
	// key is read from KV on first use).
	loadKey func(ctx context.Context) ([]byte, error)

	mu  sync.Mutex
	key []byte
}

func (ss *sessions) signingKey(ctx context.Context) ([]byte, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.key == nil {
		k, err := ss.loadKey(ctx)
		if err != nil {
			return nil, err
		}
		ss.key = k
	}
	return ss.key, nil
}

// create starts a session that ends at exp and returns the cookie value
// "<expiry unix>.<id>.<hmac>".
func (ss *sessions) create(ctx context.Context, now, exp time.Time) (string, error) {
	key, err := ss.signingKey(ctx)
	if err != nil {
		return "", err
	}
	id := nuid.Next()
	if err := ss.store.add(ctx, id, exp, now); err != nil {
		return "", err
	}
	payload := strconv.FormatInt(exp.Unix(), 10) + "." + id
	return payload + "." + sign(key, payload), nil
}

func sign(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

// id returns the session id of a cookie value whose signature is right,
// whatever its state.
func (ss *sessions) id(ctx context.Context, v string) (string, time.Time, bool, error) {
	key, err := ss.signingKey(ctx)
	if err != nil {
		return "", time.Time{}, false, err
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return "", time.Time{}, false, nil
	}
	payload := parts[0] + "." + parts[1]
	if !hmac.Equal([]byte(sign(key, payload)), []byte(parts[2])) {
		return "", time.Time{}, false, nil
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return "", time.Time{}, false, nil
	}
	return parts[1], time.Unix(exp, 0), true, nil
}

// valid reports whether v is the cookie of a live session. An error means
// the store could not be read.
func (ss *sessions) valid(ctx context.Context, v string, now time.Time) (bool, error) {
	id, exp, ok, err := ss.id(ctx, v)
	if err != nil || !ok {
		return false, err
	}
	e, live, err := ss.store.expiry(ctx, id)
	if err != nil || !live {
		return false, err
	}
	if !now.Before(e) {
		_ = ss.store.remove(ctx, id) // best effort: the next login sweeps it too
		return false, nil
	}
	return now.Before(exp), nil
}

// end revokes the session of cookie value v.
func (ss *sessions) end(ctx context.Context, v string) error {
	id, _, ok, err := ss.id(ctx, v)
	if err != nil || !ok {
		return err
	}
	return ss.store.remove(ctx, id)
}

// memStore keeps the sessions in this process: every replica has its own
// logins, and a restart logs everyone out. It is the store of a Server
// made without WithSessionStore.
type memStore struct {
	mu   sync.Mutex
	live map[string]time.Time // session id -> expiry
}

func newMemStore() *memStore { return &memStore{live: map[string]time.Time{}} }

func (m *memStore) add(_ context.Context, id string, exp, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.live {
		if !now.Before(e) {
			delete(m.live, k)
		}
	}
	for len(m.live) >= maxSessions {
		first, firstExp := "", time.Time{}
		for k, e := range m.live {
			if first == "" || e.Before(firstExp) {
				first, firstExp = k, e
			}
		}
		delete(m.live, first)
	}
	m.live[id] = exp
	return nil
}

func (m *memStore) expiry(_ context.Context, id string) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live[id]
	return e, ok, nil
}

func (m *memStore) remove(_ context.Context, id string) error {
	m.mu.Lock()
	delete(m.live, id)
	m.mu.Unlock()
	return nil
}

// overTLS reports whether the browser reached the UI over HTTPS: directly
// (r.TLS), or through a proxy that terminates TLS and says so with
// "X-Forwarded-Proto: https" or "Forwarded: proto=https". Only a trusted
// proxy should set those headers (it should overwrite what clients send);
// a client that sets them itself only makes its own cookie Secure, which
// its browser then keeps off plain HTTP.
func overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if p, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ","); strings.EqualFold(strings.TrimSpace(p), "https") {
		return true
	}
	first, _, _ := strings.Cut(r.Header.Get("Forwarded"), ",")
	for _, kv := range strings.Split(first, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, "proto") && strings.EqualFold(strings.Trim(v, `"`), "https") {
			return true
		}
	}
	return false
}

// sessionCookie is the session cookie with value v (empty and expired when
// maxAge < 0). Its path is / so that other pages of the port behind the
// login (/debug/pprof/) receive it too.
func sessionCookie(r *http.Request, v string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: v, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: overTLS(r)}
}
