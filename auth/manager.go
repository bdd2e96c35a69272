package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"customactions/internal/kvwatch"
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

	mu      sync.RWMutex
	current map[string]*Fetched
	changed chan struct{}
	flights map[string]*flight
}

type flight struct {
	done    chan struct{}
	res     *Fetched
	fetched bool
	err     error
}

type fetchedRecord struct {
	Token      string `json:"token"`
	FetchedAt  int64  `json:"fetched_at_ms"`
	ExpiresAt  int64  `json:"expires_at_ms,omitempty"`
	ConfigHash string `json:"config_hash"`
	Holder     string `json:"fetched_by"`
}

type leaseRecord struct {
	Holder    string `json:"holder"`
	ExpiresAt int64  `json:"expires_at_ms"`
}

type failRecord struct {
	At     int64  `json:"at_ms"`
	Reason string `json:"reason"`
	Status int    `json:"auth_status,omitempty"`
	Body   string `json:"auth_body,omitempty"`
}

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

// NewManager returns a Manager over the fetched-token bucket kv.
func NewManager(kv KV, fetcher *Fetcher, opts ...ManagerOption) *Manager {
	m := &Manager{kv: kv, fetcher: fetcher, now: time.Now, holder: nuid.Next(),
		leaseTTL: 15 * time.Second, margin: 30 * time.Second, poll: 20 * time.Millisecond, flightTO: 60 * time.Second,
		current: map[string]*Fetched{}, changed: make(chan struct{}), flights: map[string]*flight{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Watch follows the shared records until ctx ends, so Current answers from
// memory.
func (m *Manager) Watch(ctx context.Context) error {
	w, err := m.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch fetched tokens: %w", err)
	}
	kvwatch.Follow(ctx, w, m.apply)
	return nil
}

// apply takes one change of the bucket: a fetched token, or a lease or
// failure record (which only wakes waiters).
func (m *Manager) apply(e jetstream.KeyValueEntry) {
	id, ok := strings.CutPrefix(e.Key(), fetchedKeyPrefix)
	switch {
	case !ok:
		m.notify()
	case e.Operation() != jetstream.KeyValuePut:
		m.mu.Lock()
		delete(m.current, id)
		m.mu.Unlock()
		m.notify()
	default:
		if f, err := m.decode(id, e.Value(), e.Revision()); err == nil {
			m.remember(id, f)
		}
	}
}

func (m *Manager) notify() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// remember keeps f as the current token of id unless a newer one is known.
func (m *Manager) remember(id string, f *Fetched) {
	m.mu.Lock()
	if cur := m.current[id]; cur == nil || f.Revision > cur.Revision {
		m.current[id] = f
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

func (m *Manager) cached(id string) (*Fetched, chan struct{}) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.current[id], m.changed
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
	m.mu.Lock()
	delete(m.current, id)
	m.mu.Unlock()
	if err := m.kv.Delete(ctx, fetchedKeyPrefix+id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget fetched token %s: %w", id, err)
	}
	return nil
}

// Peek returns the most recently fetched token of id known to this replica,
// or nil.
func (m *Manager) Peek(id string) *Fetched {
	f, _ := m.cached(id)
	return f
}

func (m *Manager) obtain(ctx context.Context, tok *Token, stale uint64) (*Fetched, Outcome, error) {
	hash := tok.ConfigHash()
	for {
		if f, _ := m.cached(tok.ID); m.usable(f, tok, hash, stale) {
			return f, Outcome{Waited: true}, nil
		}
		fl, leader := m.startFlight(tok, stale)
		select {
		case <-fl.done:
		case <-ctx.Done():
			return nil, Outcome{Waited: true}, fmt.Errorf("wait for token %s: %w", tok.ID, ctx.Err())
		}
		if fl.err != nil {
			return nil, Outcome{Waited: true, Fetched: leader}, fl.err
		}
		if fl.res.Revision > stale {
			return fl.res, Outcome{Waited: true, Fetched: leader && fl.fetched}, nil
		}
		// The flight answered for an older token than ours: go again.
	}
}

// refreshInBackground starts a proactive refresh unless one is under way,
// and reports its outcome to bg.
func (m *Manager) refreshInBackground(tok *Token, stale uint64, bg func(Refresh)) {
	fl, started := m.startFlight(tok, stale)
	if !started || bg == nil {
		return
	}
	go func() {
		<-fl.done
		if fl.err != nil {
			bg(Refresh{TokenID: tok.ID, Err: fl.err})
		} else if fl.fetched {
			bg(*fl.res.refresh(tok.ID))
		}
	}()
}

// startFlight joins the flight for tok in this process or starts one.
func (m *Manager) startFlight(tok *Token, stale uint64) (*flight, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fl := m.flights[tok.ID]; fl != nil {
		return fl, false
	}
	fl := &flight{done: make(chan struct{})}
	m.flights[tok.ID] = fl
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.flightTO)
		defer cancel()
		fl.res, fl.fetched, fl.err = m.coordinate(ctx, tok, stale)
		m.mu.Lock()
		delete(m.flights, tok.ID)
		m.mu.Unlock()
		close(fl.done)
	}()
	return fl, true
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
		got, leaseRev, until, err := m.acquire(ctx, tok.ID)
		if err != nil {
			return nil, false, err
		}
		if got {
			f, fetched, err := m.fetchAndStore(ctx, tok, hash, stale)
			m.release(tok.ID, leaseRev)
			return f, fetched, err
		}
		if err := m.waitForHolder(ctx, tok.ID, rev, until, start); err != nil {
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

// readUsable reads the shared record of tok and returns it when it may be
// used instead of a token of revision stale; otherwise it returns nil and
// the record's revision, for a compare-and-set.
func (m *Manager) readUsable(ctx context.Context, tok *Token, hash string, stale uint64) (*Fetched, uint64, error) {
	f, rev, err := m.read(ctx, tok.ID)
	if err != nil {
		return nil, 0, err
	}
	if m.usable(f, tok, hash, stale) {
		m.remember(tok.ID, f)
		return f, rev, nil
	}
	return nil, rev, nil
}

// read returns the shared record of id (nil when none) and its revision.
func (m *Manager) read(ctx context.Context, id string) (*Fetched, uint64, error) {
	e, err := m.kv.Get(ctx, fetchedKeyPrefix+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read fetched token %s: %w", id, err)
	}
	f, err := m.decode(id, e.Value(), e.Revision())
	if err != nil {
		return nil, e.Revision(), nil // unreadable: treat as absent, overwrite it
	}
	return f, e.Revision(), nil
}

// acquire takes the refresh lease of id. When another holder has it, it
// returns false and the time its lease lapses.
func (m *Manager) acquire(ctx context.Context, id string) (bool, uint64, time.Time, error) {
	key := leaseKeyPrefix + id
	now := m.now()
	lease, _ := json.Marshal(leaseRecord{Holder: m.holder, ExpiresAt: now.Add(m.leaseTTL).UnixMilli()})
	rev, err := m.kv.Create(ctx, key, lease)
	if err == nil {
		return true, rev, time.Time{}, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, 0, time.Time{}, fmt.Errorf("take refresh lease of %s: %w", id, err)
	}
	e, err := m.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, 0, now, nil // released meanwhile: try again at once
	}
	if err != nil {
		return false, 0, time.Time{}, fmt.Errorf("read refresh lease of %s: %w", id, err)
	}
	var cur leaseRecord
	if json.Unmarshal(e.Value(), &cur) != nil || now.UnixMilli() >= cur.ExpiresAt {
		// The holder died or stalled: take the lease over.
		rev, err := m.kv.Update(ctx, key, lease, e.Revision())
		if err == nil {
			return true, rev, time.Time{}, nil
		}
		return false, 0, now, nil
	}
	return false, 0, time.UnixMilli(cur.ExpiresAt), nil
}

func (m *Manager) release(id string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.kv.Delete(ctx, leaseKeyPrefix+id, jetstream.LastRevision(rev))
}

func (m *Manager) recordFailure(id string, err error) {
	rec := failRecord{At: m.now().UnixMilli(), Reason: err.Error()}
	var aerr *AuthError
	if errors.As(err, &aerr) {
		rec.Status, rec.Body = aerr.Status, aerr.Body
	}
	data, _ := json.Marshal(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = m.kv.Put(ctx, failKeyPrefix+id, data)
}

// waitForHolder waits until the record of id moves past rev, the holder
// records a failure that happened after start, or the lease lapses.
func (m *Manager) waitForHolder(ctx context.Context, id string, rev uint64, until, start time.Time) error {
	tick := time.NewTicker(m.poll)
	defer tick.Stop()
	for {
		f, changed := m.cached(id)
		if f != nil && f.Revision > rev {
			return nil
		}
		if !m.now().Before(until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the refresh of token %s: %w", id, ctx.Err())
		case <-changed:
		case <-tick.C:
		}
		if e, err := m.kv.Get(ctx, failKeyPrefix+id); err == nil {
			var fr failRecord
			if json.Unmarshal(e.Value(), &fr) == nil && fr.At >= start.UnixMilli() {
				return &AuthError{Status: fr.Status, Body: fr.Body, Reason: fr.Reason}
			}
		}
		if _, cur, err := m.read(ctx, id); err == nil && cur > rev {
			return nil
		}
	}
}

func (m *Manager) encode(id string, f *Fetched) ([]byte, error) {
	tok, err := m.sealer.Seal(f.Token.Reveal(), id+"/fetched")
	if err != nil {
		return nil, err
	}
	rec := fetchedRecord{Token: tok, FetchedAt: f.FetchedAt.UnixMilli(), ConfigHash: f.ConfigHash, Holder: m.holder}
	if !f.ExpiresAt.IsZero() {
		rec.ExpiresAt = f.ExpiresAt.UnixMilli()
	}
	return json.Marshal(rec)
}

func (m *Manager) decode(id string, data []byte, rev uint64) (*Fetched, error) {
	var rec fetchedRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, err
	}
	tok, err := m.sealer.Open(rec.Token, id+"/fetched")
	if err != nil {
		return nil, err
	}
	f := &Fetched{Token: Secret(tok), FetchedAt: time.UnixMilli(rec.FetchedAt), Revision: rev, ConfigHash: rec.ConfigHash}
	if rec.ExpiresAt != 0 {
		f.ExpiresAt = time.UnixMilli(rec.ExpiresAt)
	}
	return f, nil
}
