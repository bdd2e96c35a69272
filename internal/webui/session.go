package webui

import (
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

// maxSessions bounds the sessions kept in memory: beyond it, logging in
// drops the session closest to its expiry.
const maxSessions = 1000

// sessions is the server side of the login: the signed cookie names a
// session id, and only ids in live are accepted. Logout removes the id, so a
// copied cookie stops working at once. The ids live in this process only,
// as the signing key does: every replica has its own logins, and a restart
// logs everyone out.
type sessions struct {
	key []byte

	mu   sync.Mutex
	live map[string]time.Time // session id -> expiry
}

// create starts a session that ends at exp and returns the cookie value
// "<expiry unix>.<id>.<hmac>".
func (ss *sessions) create(now, exp time.Time) string {
	id := nuid.Next()
	payload := strconv.FormatInt(exp.Unix(), 10) + "." + id
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, e := range ss.live {
		if !now.Before(e) {
			delete(ss.live, k)
		}
	}
	for len(ss.live) >= maxSessions {
		first, firstExp := "", time.Time{}
		for k, e := range ss.live {
			if first == "" || e.Before(firstExp) {
				first, firstExp = k, e
			}
		}
		delete(ss.live, first)
	}
	ss.live[id] = exp
	return payload + "." + ss.sign(payload)
}

func (ss *sessions) sign(payload string) string {
	m := hmac.New(sha256.New, ss.key)
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

// id returns the session id of a cookie value whose signature is right,
// whatever its state.
func (ss *sessions) id(v string) (string, time.Time, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return "", time.Time{}, false
	}
	payload := parts[0] + "." + parts[1]
	if !hmac.Equal([]byte(ss.sign(payload)), []byte(parts[2])) {
		return "", time.Time{}, false
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return parts[1], time.Unix(exp, 0), true
}

// valid reports whether v is the cookie of a live session.
func (ss *sessions) valid(v string, now time.Time) bool {
	id, exp, ok := ss.id(v)
	if !ok {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	e, live := ss.live[id]
	if live && !now.Before(e) {
		delete(ss.live, id)
		return false
	}
	return live && now.Before(exp)
}

// end revokes the session of cookie value v.
func (ss *sessions) end(v string) {
	if id, _, ok := ss.id(v); ok {
		ss.mu.Lock()
		delete(ss.live, id)
		ss.mu.Unlock()
	}
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
