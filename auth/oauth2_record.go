package auth

// The connection record of an oauth2 token, as stored in the fetched-token
// bucket under oauth2.<token id>, sealed when a key is set: the access
// token, the current refresh token, the refresh intent and the health. One
// record, so one compare-and-set orders all of them.

import (
	"context"
	"crypto/sha256"
	"customactions/internal/kvcache"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// oauth2KeyPrefix starts the key of an oauth2 token's connection record.
const oauth2KeyPrefix = "oauth2."

// connRef names one connection record of an oauth2 token: the token's own
// (user "": in the fetched-token bucket under oauth2.<token id>) or an end
// user's (a per_end_user token: in the connections bucket under
// <token id>.<end user id>). Ids never hold a dot, so the name alone tells
// which.
type connRef struct {
	tok  *Token
	user string
}

// workspace is the workspace-wide connection of tok.
func workspace(tok *Token) connRef { return connRef{tok: tok} }

// name identifies the record in caches, flights, seals and keys.
func (r connRef) name() string { return connName(r.tok.ID, r.user) }

func connName(tokenID, user string) string {
	if user == "" {
		return tokenID
	}
	return tokenID + "." + user
}

// splitConnName is the token id and end user of a record's name.
func splitConnName(name string) (tokenID, user string) {
	tokenID, user, _ = strings.Cut(name, ".")
	return tokenID, user
}

// describeConn names the record name in messages.
func describeConn(name string) string {
	if id, user := splitConnName(name); user != "" {
		return "token " + id + " (end user " + user + ")"
	}
	return "token " + name
}

// connKV is the bucket and key of the record name.
func (m *Manager) connKV(name string) (KV, string, error) {
	if _, user := splitConnName(name); user != "" {
		if m.users == nil {
			return nil, "", fmt.Errorf("%s: %w", describeConn(name), errNoConnectionsBucket)
		}
		return m.users, name, nil
	}
	return m.kv, oauth2KeyPrefix + name, nil
}

// errNoConnectionsBucket: a Manager made without WithConnections holds no
// end users' connections.
var errNoConnectionsBucket = errors.New("no connections bucket configured")

// Rotation says whether the token endpoint answered the last refresh with
// a new refresh token.
const (
	rotationUnknown = ""
	rotationYes     = "yes"
	rotationNo      = "no"
)

type oauthRecord struct {
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Gen counts the access tokens of the token: it orders them, where
	// the record's revision also moves for intents and health.
	Gen        uint64       `json:"gen"`
	FetchedAt  int64        `json:"fetched_at_ms,omitempty"`
	ExpiresAt  int64        `json:"expires_at_ms,omitempty"`
	ConfigHash string       `json:"config_hash,omitempty"`
	Connection string       `json:"connection,omitempty"`
	Rotation   string       `json:"rotation,omitempty"`
	Refreshing *oauthIntent `json:"refreshing,omitempty"`
	Status     string       `json:"status"`
	StatusAt   int64        `json:"status_changed_at_ms"`
	LastError  string       `json:"last_error,omitempty"`
	By         string       `json:"by,omitempty"`
}

// oauthIntent is written, by compare-and-set, before a refresh token is
// sent: it is the refresh lease (its holder and start; it lapses after the
// lease TTL) and the evidence that a refresh token may have been spent
// when its holder never completed.
type oauthIntent struct {
	By    string `json:"by"`
	At    int64  `json:"at_ms"`
	RHash string `json:"r_hash,omitempty"`
}

// oauthConn is a connection record as read, its secrets opened.
type oauthConn struct {
	Access     Secret
	Refresh    Secret
	Gen        uint64
	FetchedAt  time.Time
	ExpiresAt  time.Time
	ConfigHash string
	Connection string
	Rotation   string
	Refreshing *oauthIntent
	Health     Health
	// Rev is the KV revision of the record (0 when not stored).
	Rev uint64

	redactOnce sync.Once
	redact     *Redactor
}

// clone returns a copy of c to change and write, without its revision.
func (c *oauthConn) clone() *oauthConn {
	if c == nil {
		return &oauthConn{}
	}
	n := &oauthConn{Access: c.Access, Refresh: c.Refresh, Gen: c.Gen, FetchedAt: c.FetchedAt, ExpiresAt: c.ExpiresAt,
		ConfigHash: c.ConfigHash, Connection: c.Connection, Rotation: c.Rotation, Health: c.Health}
	if c.Refreshing != nil {
		i := *c.Refreshing
		n.Refreshing = &i
	}
	return n
}

// setHealth sets the status of c, and its time when it changes.
func (c *oauthConn) setHealth(status, lastError string, now time.Time) {
	if c.Health.Status != status {
		c.Health.ChangedAt = now
	}
	c.Health.Status, c.Health.LastError = status, lastError
}

// redactor masks the access and refresh tokens of c.
func (c *oauthConn) redactor() *Redactor {
	c.redactOnce.Do(func() { c.redact = NewRedactor(c.Access.Reveal(), c.Refresh.Reveal()) })
	return c.redact
}

// refreshHash identifies a refresh token in an intent without storing it.
func refreshHash(r Secret) string {
	if r == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(r))
	return hex.EncodeToString(sum[:8])
}

func (m *Manager) encodeOAuth(id string, c *oauthConn) ([]byte, error) {
	at, err := m.sealer.Seal(c.Access.Reveal(), id+"/oauth2/access")
	if err != nil {
		return nil, err
	}
	rt, err := m.sealer.Seal(c.Refresh.Reveal(), id+"/oauth2/refresh")
	if err != nil {
		return nil, err
	}
	rec := oauthRecord{AccessToken: at, RefreshToken: rt, Gen: c.Gen, ConfigHash: c.ConfigHash, Connection: c.Connection,
		Rotation: c.Rotation, Refreshing: c.Refreshing, Status: c.Health.Status, LastError: c.Health.LastError, By: m.holder}
	rec.FetchedAt, rec.ExpiresAt, rec.StatusAt = unixMilli(c.FetchedAt), unixMilli(c.ExpiresAt), unixMilli(c.Health.ChangedAt)
	return json.Marshal(rec)
}

func (m *Manager) decodeOAuth(id string, data []byte, rev uint64) (*oauthConn, error) {
	var rec oauthRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, err
	}
	at, err := m.sealer.Open(rec.AccessToken, id+"/oauth2/access")
	if err != nil {
		return nil, err
	}
	rt, err := m.sealer.Open(rec.RefreshToken, id+"/oauth2/refresh")
	if err != nil {
		return nil, err
	}
	return &oauthConn{Access: Secret(at), Refresh: Secret(rt), Gen: rec.Gen, FetchedAt: fromMilli(rec.FetchedAt),
		ExpiresAt: fromMilli(rec.ExpiresAt), ConfigHash: rec.ConfigHash, Connection: rec.Connection, Rotation: rec.Rotation,
		Refreshing: rec.Refreshing, Health: Health{Status: rec.Status, ChangedAt: fromMilli(rec.StatusAt), LastError: rec.LastError},
		Rev: rev}, nil
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// oauthState is what a Manager knows of oauth2 tokens: their connection
// records as last seen (read or written by this replica, dropped when the
// watch reports a change), the refreshes under way in this process and the
// health hook.
type oauthState struct {
	mu sync.Mutex // guards hook
	// conns are workspace connections, users end users' ones. Each holds
	// a bounded number: a token may have millions of end users, and a
	// replica keeps only those it used lately.
	conns, users *kvcache.Cache[*oauthConn]
	flights      flights[*oauthConn]
	hook         func(HealthChange)
}

// defaultUserCacheSize bounds the end users' connections a replica keeps
// in memory (a few KB each, most of it the Redactor of its tokens).
const defaultUserCacheSize = 2000

func newOAuthState() *oauthState {
	return &oauthState{conns: kvcache.New[*oauthConn](0), users: kvcache.New[*oauthConn](defaultUserCacheSize)}
}

// cacheFor is the cache that holds the record name.
func (st *oauthState) cacheFor(name string) *kvcache.Cache[*oauthConn] {
	if strings.Contains(name, ".") {
		return st.users
	}
	return st.conns
}

// dropOAuth forgets the cached record of name if it is older than rev (a
// change the watch reported).
func (m *Manager) dropOAuth(name string, rev uint64) { m.oauth.cacheFor(name).Invalidate(name, rev) }

// rememberOAuth keeps c, written by this replica, as the record of id
// unless a newer one is known.
func (m *Manager) rememberOAuth(id string, c *oauthConn) { m.oauth.cacheFor(id).Put(id, c, c.Rev) }

func (m *Manager) cachedOAuth(id string) *oauthConn {
	c, _, _ := m.oauth.cacheFor(id).Get(id)
	return c
}

// readOAuth reads the connection record of id from KV (nil when there is
// none) and remembers it.
func (m *Manager) readOAuth(ctx context.Context, id string) (*oauthConn, error) {
	kv, key, err := m.connKV(id)
	if err != nil {
		return nil, err
	}
	cache := m.oauth.cacheFor(id)
	epoch := cache.Begin()
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read oauth2 connection of %s: %w", describeConn(id), err)
	}
	c, err := m.decodeOAuth(id, e.Value(), e.Revision())
	if err != nil {
		return nil, fmt.Errorf("oauth2 connection of %s: %w: %v", describeConn(id), ErrTokenUnreadable, err)
	}
	cache.Add(id, c, c.Rev, epoch)
	return c, nil
}

// writeOAuth writes c as the record of id by compare-and-set on rev (0:
// create), and returns it with its new revision. A record that moved on
// meanwhile is an error wrapping jetstream.ErrKeyExists or
// jetstream.ErrKeyRevisionMismatch: nothing was written.
func (m *Manager) writeOAuth(ctx context.Context, id string, c *oauthConn, rev uint64) (*oauthConn, error) {
	return m.storeOAuth(id, c, func(kv KV, key string, data []byte) (uint64, error) {
		if rev == 0 {
			return kv.Create(ctx, key, data)
		}
		return kv.Update(ctx, key, data, rev)
	})
}

// putOAuth writes c as the record of id whatever is there (a new
// connection saved by an admin): a refresh under way on the old one then
// fails its compare-and-set and drops its result.
func (m *Manager) putOAuth(ctx context.Context, id string, c *oauthConn) (*oauthConn, error) {
	return m.storeOAuth(id, c, func(kv KV, key string, data []byte) (uint64, error) { return kv.Put(ctx, key, data) })
}

// storeOAuth encodes c, stores it with write in the bucket and under the
// key of record id, and keeps it with its new revision.
func (m *Manager) storeOAuth(id string, c *oauthConn, write func(kv KV, key string, data []byte) (uint64, error)) (*oauthConn, error) {
	kv, key, err := m.connKV(id)
	if err != nil {
		return nil, err
	}
	data, err := m.encodeOAuth(id, c)
	if err != nil {
		return nil, err
	}
	if c.Rev, err = write(kv, key, data); err != nil {
		return nil, fmt.Errorf("write oauth2 connection of %s: %w", describeConn(id), err)
	}
	m.rememberOAuth(id, c)
	m.notify()
	return c, nil
}

// moved reports whether err says the record changed since it was read.
func moved(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
