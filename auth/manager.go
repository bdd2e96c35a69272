package auth

// This file holds the Manager and the refresh protocol that ties its
// mechanisms together: the watch cache (cache.go), the in-process single
// flight (flight.go), the cross-replica lease (lease.go), the shared
// failure record (failure.go) and the fetched-token record (record.go).

import (
	"context"
	"customactions/internal/kvcache"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Keys of the fetched-token bucket: the most recent token of an HTTP token,
// the refresh lease, and the last refresh failure.
const (
	fetchedKeyPrefix = "token."
	leaseKeyPrefix   = "lease."
	failKeyPrefix    = "fail."
)

// Manager keeps the most recently fetched token of every HTTP token in a KV
// bucket shared by all replicas and refreshes it, one auth request per
// rotation across all of them.
//
// The protocol: a replica that needs a new token reads the shared record;
// if it is newer than the token that failed, it uses it. Otherwise it
// creates the lease key only if absent (the lease carries its holder and
// expiry; an expired lease is taken over by compare-and-set). The holder
// fetches, writes the record by compare-and-set and deletes the lease; the
// others wait for the record to change, for a failure to be recorded, or
// for the lease to lapse, and then take over. In one process, callers that
// need the same token share one flight. No lock is held across an action
// call: the lease covers only the auth request.
type Manager struct {
	kv       KV
	fetcher  *Fetcher
	sealer   *Sealer
	now      func() time.Time
	holder   string
	leaseTTL time.Duration
	margin   time.Duration
	poll     time.Duration
	flightTO time.Duration

	mu      sync.RWMutex // guards changed
	current *kvcache.Cache[*Fetched]
	changed chan struct{}
	flights flights[*Fetched]

	// oauth holds the connection records of oauth2 tokens (oauth2*.go).
	oauth *oauthState
	// users is the bucket of end users' connections (per_end_user
	// tokens), nil when none is configured.
	users KV
	// links makes connect links for end users who must connect (set by
	// SetConnector; nil when the service has no public URL).
	links atomic.Pointer[Connector]
}

// SetConnector makes calls for an end user without a usable connection
// answer with a link from c (an *AuthorizationRequiredError).
func (m *Manager) SetConnector(c *Connector) { m.links.Store(c) }

func (m *Manager) connectLinks() *Connector { return m.links.Load() }

// ManagerOption configures a Manager.
type ManagerOption func(*Manager)

// WithManagerClock sets the clock (default time.Now).
func WithManagerClock(now func() time.Time) ManagerOption { return func(m *Manager) { m.now = now } }

// WithLeaseTTL sets how long a refresh lease lasts before another replica
// may take it over (default 15 s; it must exceed an auth request with its
// retries).
func WithLeaseTTL(d time.Duration) ManagerOption { return func(m *Manager) { m.leaseTTL = d } }

// WithExpiryMargin sets how long before its expiry a token is refreshed
// (default 30 s, at most a fifth of the token's lifetime). Within twice the
// margin a refresh starts in the background while calls keep the current
// token.
func WithExpiryMargin(d time.Duration) ManagerOption { return func(m *Manager) { m.margin = d } }

// WithHolder names this replica in leases (default a unique id).
func WithHolder(h string) ManagerOption { return func(m *Manager) { m.holder = h } }

// WithSealer encrypts fetched tokens at rest.
func WithSealer(s *Sealer) ManagerOption { return func(m *Manager) { m.sealer = s } }

// WithConnections sets the bucket of end users' connections (contract
// §11), and how many of them this Manager keeps in memory (0: 2,000).
func WithConnections(kv KV, cached int) ManagerOption {
	return func(m *Manager) {
		m.users = kv
		if cached > 0 {
			m.oauth.users = kvcache.New[*oauthConn](cached)
		}
	}
}

// NewManager returns a Manager over the fetched-token bucket kv.
func NewManager(kv KV, fetcher *Fetcher, opts ...ManagerOption) *Manager {
	m := &Manager{kv: kv, fetcher: fetcher, now: time.Now, holder: nuid.Next(),
		leaseTTL: 15 * time.Second, margin: 30 * time.Second, poll: 20 * time.Millisecond, flightTO: 60 * time.Second,
		current: kvcache.New[*Fetched](0), changed: make(chan struct{}), oauth: newOAuthState()}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Wait returns when the refreshes under way in this process (of HTTP
// Request tokens and oauth2 connections, proactive ones included) have
// finished and written their outcome, or with ctx's error when ctx ends
// first. A service calls it on shutdown, after its last call and before it
// closes its connection: an oauth2 refresh cut off after its refresh token
// was sent would leave the connection needing reauthorization.
func (m *Manager) Wait(ctx context.Context) error {
	if err := m.flights.wait(ctx); err != nil {
		return err
	}
	return m.oauth.flights.wait(ctx)
}

// marginFor is the refresh margin of f: m.margin, at most a fifth of its
// lifetime.
func (m *Manager) marginFor(f *Fetched) time.Duration {
	if f.ExpiresAt.IsZero() {
		return 0
	}
	return min(m.margin, f.ExpiresAt.Sub(f.FetchedAt)/5)
}

// usable reports whether f may be used for tok instead of a token of
// revision stale or older.
func (m *Manager) usable(f *Fetched, tok *Token, hash string, stale uint64) bool {
	return f != nil && f.Revision > stale && f.ConfigHash == hash && !f.ExpiresWithin(m.now(), m.marginFor(f))
}

// Outcome says what getting a token took.
type Outcome struct {
	// Waited is true when the caller caused or waited for a refresh, or
	// took a token that another caller refreshed after the one it had.
	Waited bool
	// Fetched is true when the caller's own flight made the auth request;
	// that caller reports the refresh.
	Fetched bool
}

// Current returns the token to use for tok: the most recently fetched one,
// or a new one when there is none or it expires within the margin. Errors
// are those of Refresh.
func (m *Manager) Current(ctx context.Context, tok *Token) (*Fetched, Outcome, error) {
	return m.currentFor(ctx, tok, nil)
}

// currentFor is Current; a proactive refresh that it starts is reported to
// bg when bg is set.
func (m *Manager) currentFor(ctx context.Context, tok *Token, bg func(Refresh)) (*Fetched, Outcome, error) {
	hash := tok.ConfigHash()
	f, _ := m.cached(tok.ID)
	if f == nil {
		// Not used lately by this replica: the shared record, when
		// usable, is the current token (no refresh).
		var err error
		if f, _, err = m.readUsable(ctx, tok, hash, 0); err != nil {
			return nil, Outcome{}, err
		}
	}
	if m.usable(f, tok, hash, 0) {
		if f.ExpiresWithin(m.now(), 2*m.marginFor(f)) {
			m.refreshInBackground(tok, f.Revision, bg)
		}
		return f, Outcome{}, nil
	}
	var stale uint64
	if f != nil {
		stale = f.Revision
	}
	return m.obtain(ctx, tok, stale)
}

// Refresh returns a token newer than failed (the one an action answered 401
// to): one fetched by another caller or replica since, or a new one from
// the auth endpoint. Concurrent callers share one auth request. fetched
// and Outcome say how it was obtained.
//
// A failed auth request is an *AuthError, or an error wrapping
// ErrNotInResponse; both say nothing secret.
func (m *Manager) Refresh(ctx context.Context, tok *Token, failed *Fetched) (*Fetched, Outcome, error) {
	var stale uint64
	if failed != nil {
		stale = failed.Revision
	}
	return m.obtain(ctx, tok, stale)
}

// Forget drops the fetched token of id, for example when its auth
// configuration changed.
func (m *Manager) Forget(ctx context.Context, id string) error {
	m.current.Drop(id)
	if err := m.kv.Delete(ctx, fetchedKeyPrefix+id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget fetched token %s: %w", id, err)
	}
	return nil
}

// Peek returns the most recently fetched token of id held in this
// replica's memory, or nil.
func (m *Manager) Peek(id string) *Fetched {
	f, _ := m.cached(id)
	return f
}

// Fetched returns the most recently fetched token of id: the one in
// memory, else the shared record in KV; nil when there is none.
func (m *Manager) Fetched(ctx context.Context, id string) (*Fetched, error) {
	if f, _ := m.cached(id); f != nil {
		return f, nil
	}
	f, _, err := m.read(ctx, id)
	return f, err
}

func (m *Manager) obtain(ctx context.Context, tok *Token, stale uint64) (*Fetched, Outcome, error) {
	hash := tok.ConfigHash()
	for {
		if f, _ := m.cached(tok.ID); m.usable(f, tok, hash, stale) {
			return f, Outcome{Waited: true}, nil
		}
		fl, leader := m.startFlight(tok, stale)
		f, oc, done, err := await(ctx, tok.ID, fl, leader, func(f *Fetched) bool { return f.Revision > stale })
		if done {
			return f, oc, err
		}
		// The flight answered for an older token than ours: go again.
	}
}

// coordinate gets a token newer than stale through the shared record and
// the lease.
func (m *Manager) coordinate(ctx context.Context, tok *Token, stale uint64) (*Fetched, bool, error) {
	hash := tok.ConfigHash()
	start := m.now()
	for {
		f, rev, err := m.readUsable(ctx, tok, hash, stale)
		if f != nil || err != nil {
			return f, false, err
		}
		l, err := m.acquire(ctx, tok.ID)
		if err != nil {
			return nil, false, err
		}
		if l.held {
			f, fetched, err := m.fetchAndStore(ctx, tok, hash, stale)
			m.release(tok.ID, l.rev)
			return f, fetched, err
		}
		if err := m.waitForHolder(ctx, tok.ID, rev, l.until, start); err != nil {
			return nil, false, err
		}
	}
}

func (m *Manager) fetchAndStore(ctx context.Context, tok *Token, hash string, stale uint64) (*Fetched, bool, error) {
	// Someone may have finished between our read and our lease.
	f, rev, err := m.readUsable(ctx, tok, hash, stale)
	if f != nil || err != nil {
		return f, false, err
	}
	f, err = m.fetcher.Fetch(ctx, tok)
	if err != nil {
		m.recordFailure(tok.ID, err)
		return nil, false, err
	}
	data, err := m.encode(tok.ID, f)
	if err != nil {
		return nil, false, err
	}
	for range 3 {
		if rev == 0 {
			f.Revision, err = m.kv.Create(ctx, fetchedKeyPrefix+tok.ID, data)
		} else {
			f.Revision, err = m.kv.Update(ctx, fetchedKeyPrefix+tok.ID, data, rev)
		}
		if err == nil {
			m.remember(tok.ID, f)
			return f, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			break
		}
		// A holder whose lease lapsed wrote meanwhile; ours is as fresh.
		if _, rev, err = m.read(ctx, tok.ID); err != nil {
			break
		}
	}
	return nil, false, fmt.Errorf("store fetched token %s: %w", tok.ID, err)
}
