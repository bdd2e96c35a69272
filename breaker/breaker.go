package breaker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"customactions/internal/kvcache"
	"customactions/internal/kvwatch"
)

// KV is the part of a JetStream KV bucket the breaker uses;
// jetstream.KeyValue satisfies it.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
	Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
	WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// Breaker is the shared circuit breaker of every action.
type Breaker struct {
	kv         KV
	s          Settings
	now        func() time.Time
	holder     string
	onChange   func(Transition)
	onError    func(actionID string, err error)
	onThrottle func(Throttle)

	// cache holds the states of the actions this replica called lately
	// (an absent record, a closed breaker, is held too, at revision 0).
	cache   *kvcache.Cache[*Status]
	mu      sync.RWMutex
	pending map[string]*batch
	// throttles: until when each action is held back (throttle.go).
	throttles map[string]time.Time
	// limits an admin set, the local rate permits and the concurrency
	// slots this replica holds (limits.go, limiter.go).
	limits map[string]*Limits
	pools  map[string]*ratePool
	slots  map[string]int
	// kvDownUntil: after a KV failure on the call path, calls fail open at
	// once for a few seconds instead of each waiting for a timeout.
	kvDownUntil time.Time
}

// kvRetryAfter is how long the call path skips KV after a failure.
const kvRetryAfter = 5 * time.Second

// batch is the outcomes of one action counted here and not yet flushed.
type batch struct {
	gen        uint64
	successes  int
	failures   int
	trail      int  // failures since the last success of the batch
	sawSuccess bool // a success resets the shared run of failures
	timer      *time.Timer
	due        time.Time
}

// Option configures a Breaker.
type Option func(*Breaker)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(b *Breaker) { b.now = now } }

// OnTransition is called after every state change this replica made.
func OnTransition(f func(Transition)) Option { return func(b *Breaker) { b.onChange = f } }

// OnError is called when KV cannot be reached and the breaker fails open.
func OnError(f func(actionID string, err error)) Option { return func(b *Breaker) { b.onError = f } }

// WithHolder names this replica as a probe holder (default a unique id).
func WithHolder(h string) Option { return func(b *Breaker) { b.holder = h } }

// New returns a Breaker over kv with settings s (defaults applied).
func New(kv KV, s Settings, opts ...Option) (*Breaker, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("breaker settings: %w", err)
	}
	b := &Breaker{kv: kv, s: s, now: time.Now, holder: nuid.Next(), onChange: func(Transition) {},
		onError: func(string, error) {}, onThrottle: func(Throttle) {},
		cache: kvcache.New[*Status](0), pending: map[string]*batch{}, throttles: map[string]time.Time{},
		limits: map[string]*Limits{}, pools: map[string]*ratePool{}, slots: map[string]int{}}
	for _, o := range opts {
		o(b)
	}
	return b, nil
}

// WithCacheSize sets how many actions' states a replica keeps in memory
// (default kvcache.DefaultSize).
func WithCacheSize(n int) Option { return func(b *Breaker) { b.cache = kvcache.New[*Status](n) } }

// Watch follows the bucket until ctx ends: the pauses (throttles) and the
// limits of actions, loaded before it returns (there are few), and the
// keys of the breakers' changes from now on, which drop the states held in
// memory that another replica changed. A breaker's state is read from KV
// when this replica first calls its action: the bucket may hold a hundred
// thousand breakers, and none is read at start-up.
func (b *Breaker) Watch(ctx context.Context) error {
	w, err := b.kv.WatchFiltered(ctx, []string{throttleKeyPrefix + "*", limitsKeyPrefix + "*"})
	if err != nil {
		return fmt.Errorf("watch throttles and limits: %w", err)
	}
	// A breaker's key is its action id, one token without a dot.
	if err := kvcache.FollowKeys(ctx, b.kv, "*", "breakers", func(e jetstream.KeyValueEntry) {
		b.cache.Invalidate(e.Key(), e.Revision())
	}); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(concLease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.renewSlots(ctx)
			}
		}
	}()
	select {
	case <-kvwatch.Follow(ctx, w, b.apply):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Breaker) apply(e jetstream.KeyValueEntry) {
	_ = b.applyThrottle(e) || b.applyLimits(e)
}

func (b *Breaker) remember(id string, st *Status, rev uint64) { b.cache.Put(id, st, rev) }

// get returns the state of id held in memory: closed (revision 0) when
// this replica holds none.
func (b *Breaker) get(id string) (*Status, uint64) {
	if st, rev, ok := b.cache.Get(id); ok {
		return st, rev
	}
	return &Status{ActionID: id, State: Closed}, 0
}

// load returns the state of id: held in memory, else read from KV (an
// absent record is a closed breaker, held as such). While KV is failing,
// or when the read fails, it answers closed: the breaker fails open.
func (b *Breaker) load(ctx context.Context, id string) (*Status, uint64) {
	if st, rev, ok := b.cache.Get(id); ok {
		return st, rev
	}
	b.mu.Lock()
	down := b.now().Before(b.kvDownUntil)
	b.mu.Unlock()
	closed := &Status{ActionID: id, State: Closed}
	if down {
		return closed, 0
	}
	epoch := b.cache.Begin()
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	e, err := b.kv.Get(rctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		b.cache.Add(id, closed, 0, epoch)
		return closed, 0
	}
	var st Status
	if err == nil {
		err = json.Unmarshal(e.Value(), &st)
	}
	if err != nil {
		b.mu.Lock()
		b.kvDownUntil = b.now().Add(kvRetryAfter)
		b.mu.Unlock()
		b.onError(id, fmt.Errorf("read breaker %s: %w", id, err))
		return closed, 0
	}
	b.cache.Add(id, &st, e.Revision(), epoch)
	return &st, e.Revision()
}

// Allow says whether a live call of the action may go ahead. It returns an
// error wrapping ErrOpen when the breaker is open (or half-open with its
// probe taken); otherwise done must be called once with the outcome of the
// call: Success and Failure count, Ignored does not (and frees a probe).
func (b *Breaker) Allow(ctx context.Context, actionID string) (done func(Outcome), err error) {
	st, rev := b.load(ctx, actionID)
	now := b.now()
	switch st.State {
	case Open:
		if now.Before(st.OpenUntil()) {
			return nil, ErrOpen
		}
		return b.tryProbe(ctx, actionID, st, rev, "cool-down of "+time.Duration(st.CooldownMS*int64(time.Millisecond)).String()+" passed")
	case HalfOpen:
		if st.ProbeBy != "" && now.UnixMilli() < st.ProbeUntil {
			return nil, ErrOpen
		}
		return b.tryProbe(ctx, actionID, st, rev, "the previous probe ended without an outcome")
	default:
		gen := st.Generation
		return func(o Outcome) { b.count(actionID, gen, o) }, nil
	}
}

// tryProbe moves the breaker to half-open with this replica as the one
// probe. Only one replica's compare-and-set wins; the others get ErrOpen.
func (b *Breaker) tryProbe(ctx context.Context, id string, st *Status, rev uint64, reason string) (func(Outcome), error) {
	b.mu.Lock()
	down := b.now().Before(b.kvDownUntil)
	b.mu.Unlock()
	if down {
		return func(Outcome) {}, nil // fail open
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	next := *st
	next.State = HalfOpen
	next.Generation++
	next.ProbeBy = b.holder
	next.ProbeUntil = b.now().Add(b.s.ProbeTimeout).UnixMilli()
	next.Reason = reason
	err := b.write(ctx, id, &next, rev)
	switch {
	case errors.Is(err, errConflict):
		return nil, ErrOpen // another replica took the probe
	case err != nil:
		b.mu.Lock()
		b.kvDownUntil = b.now().Add(kvRetryAfter)
		b.mu.Unlock()
		b.onError(id, err)
		return func(Outcome) {}, nil // fail open
	}
	if st.State == Open {
		b.onChange(Transition{ActionID: id, From: st.State, To: HalfOpen, Generation: next.Generation,
			Cooldown: time.Duration(st.CooldownMS) * time.Millisecond, Reason: reason})
	}
	gen := next.Generation
	return func(o Outcome) { b.probeDone(id, gen, o) }, nil
}

var errConflict = errors.New("breaker state changed meanwhile")

// write stores st if the key is still at rev (0: absent).
func (b *Breaker) write(ctx context.Context, id string, st *Status, rev uint64) error {
	st.ActionID = id
	st.UpdatedAt = b.now().UTC().Format(time.RFC3339Nano)
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var newRev uint64
	if rev == 0 {
		newRev, err = b.kv.Create(ctx, id, data)
	} else {
		newRev, err = b.kv.Update(ctx, id, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		b.refresh(ctx, id)
		return errConflict
	}
	if err != nil {
		return fmt.Errorf("write breaker %s: %w", id, err)
	}
	b.remember(id, st, newRev)
	return nil
}

// refresh reads the key into the cache after a conflict, so a retry works
// on the newest state without waiting for the watch.
func (b *Breaker) refresh(ctx context.Context, id string) {
	e, err := b.kv.Get(ctx, id)
	if err != nil {
		return
	}
	var st Status
	if json.Unmarshal(e.Value(), &st) == nil {
		b.remember(id, &st, e.Revision())
	}
}

// update applies change to the newest state of id by compare-and-set,
// retrying after conflicts. change returns false to leave the state alone.
func (b *Breaker) update(ctx context.Context, id string, change func(st *Status) bool) (before Status, after *Status, err error) {
	for range 20 {
		cur, rev := b.load(ctx, id)
		next := *cur
		next.Buckets = slices.Clone(cur.Buckets)
		if !change(&next) {
			return *cur, nil, nil
		}
		err = b.write(ctx, id, &next, rev)
		if err == nil {
			return *cur, &next, nil
		}
		if !errors.Is(err, errConflict) {
			return *cur, nil, err
		}
	}
	return Status{}, nil, fmt.Errorf("update breaker %s: too many conflicts", id)
}

// probeDone closes the breaker after a successful probe and opens it again,
// with a doubled cool-down, after a failed one. A probe that ended without
// an outcome frees the probe slot for another trigger.
func (b *Breaker) probeDone(id string, gen uint64, o Outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := b.now()
	before, after, err := b.update(ctx, id, func(st *Status) bool {
		if st.State != HalfOpen || st.Generation != gen {
			return false // reset by an admin, or taken over: not ours any more
		}
		switch o {
		case Success:
			*st = Status{State: Closed, Generation: st.Generation + 1, Reason: "probe succeeded"}
		case Failure, Slow:
			cool := min(time.Duration(st.CooldownMS)*time.Millisecond*2, b.s.MaxCooldown)
			*st = Status{State: Open, Generation: st.Generation + 1, OpenedAtMS: now.UnixMilli(),
				CooldownMS: cool.Milliseconds(), Reason: "probe failed"}
		default:
			st.ProbeBy, st.ProbeUntil = "", 0
		}
		return true
	})
	if err != nil {
		b.onError(id, err)
		return
	}
	if after != nil && after.State != before.State {
		b.onChange(Transition{ActionID: id, From: before.State, To: after.State, Generation: after.Generation,
			Cooldown: time.Duration(after.CooldownMS) * time.Millisecond, Reason: after.Reason})
	}
}

// count adds a closed-state outcome to the local batch and schedules its
// flush.
func (b *Breaker) count(id string, gen uint64, o Outcome) {
	switch o {
	case Success, Failure:
	case Slow:
		o = Failure
	default:
		return
	}
	if b.add(id, gen, o) {
		b.flush(id) // this batch alone trips the breaker: do not wait
	}
}

// add counts one outcome in the local batch and reports whether the shared
// counts known here plus the batch meet the trip rule.
func (b *Breaker) add(id string, gen uint64, o Outcome) (trips bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pending[id]
	if p != nil && p.gen != gen {
		if gen < p.gen {
			return // outcome of an older generation
		}
		p.successes, p.failures, p.trail, p.sawSuccess, p.gen = 0, 0, 0, false, gen
	}
	if p == nil {
		p = &batch{gen: gen}
		b.pending[id] = p
	}
	delay := 10 * b.s.FlushInterval
	if o == Failure {
		p.failures++
		p.trail++
		delay = b.s.FlushInterval
		st, _ := b.get(id)
		if st.State == Closed && st.Generation == gen {
			if _, trip := b.s.readyToTrip(p.addTo(st, b.now(), b.s.Window)); trip {
				if p.timer != nil {
					p.timer.Stop()
				}
				return true
			}
		}
	} else {
		p.successes++
		p.trail = 0
		p.sawSuccess = true
	}
	due := b.now().Add(delay)
	if p.timer == nil {
		p.due = due
		p.timer = time.AfterFunc(delay, func() { b.flush(id) })
	} else if due.Before(p.due) {
		p.due = due
		p.timer.Reset(delay)
	}
	return false
}

// addTo returns the counts of st in the window ending at now with the
// batch added.
func (p *batch) addTo(st *Status, now time.Time, window time.Duration) Counts {
	c := st.Counts(now, window)
	c.Successes += p.successes
	c.Failures += p.failures
	if p.sawSuccess {
		c.Consecutive = p.trail
	} else {
		c.Consecutive += p.failures
	}
	return c
}

// flush adds the local batch of id to the shared counts and opens the
// breaker when the trip rule holds.
func (b *Breaker) flush(id string) {
	b.mu.Lock()
	p := b.pending[id]
	delete(b.pending, id)
	b.mu.Unlock()
	if p == nil || (p.successes == 0 && p.failures == 0) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := b.now()
	var counts Counts
	before, after, err := b.update(ctx, id, func(st *Status) bool {
		if st.State != Closed || st.Generation != p.gen {
			return false // the breaker moved on: these outcomes are stale
		}
		counts = p.addTo(st, now, b.s.Window)
		st.add(now, b.s.Window, p.successes, p.failures)
		st.Consecutive = counts.Consecutive
		reason, trip := b.s.readyToTrip(counts)
		if !trip {
			return true
		}
		*st = Status{State: Open, Generation: st.Generation + 1, OpenedAtMS: now.UnixMilli(),
			CooldownMS: b.s.Cooldown.Milliseconds(), Reason: reason, Consecutive: counts.Consecutive}
		return true
	})
	if err != nil {
		b.onError(id, err)
		return
	}
	if after != nil && after.State == Open && before.State == Closed {
		b.onChange(Transition{ActionID: id, From: Closed, To: Open, Generation: after.Generation, Successes: counts.Successes,
			Failures: counts.Failures, Consecutive: counts.Consecutive, Cooldown: b.s.Cooldown, Reason: after.Reason})
	}
}

// Flush writes every pending batch now (on shutdown, and in tests).
func (b *Breaker) Flush() {
	b.mu.Lock()
	ids := make([]string, 0, len(b.pending))
	for id, p := range b.pending {
		if p.timer != nil {
			p.timer.Stop()
		}
		ids = append(ids, id)
	}
	b.mu.Unlock()
	for _, id := range ids {
		b.flush(id)
	}
}

// Open reports, from memory, whether a live call of the action would be
// refused now: the breaker is open and its cool-down has not passed, or it
// is half-open with its probe taken.
func (b *Breaker) Open(actionID string) bool {
	st, _ := b.get(actionID)
	now := b.now()
	switch st.State {
	case Open:
		return now.Before(st.OpenUntil())
	case HalfOpen:
		return st.ProbeBy != "" && now.UnixMilli() < st.ProbeUntil
	}
	return false
}

// Get returns the state of an action: held in memory, else read from KV.
func (b *Breaker) Get(actionID string) Status {
	st, _ := b.load(context.Background(), actionID)
	return *st
}

// List returns the state of every action that has one, sorted by action id,
// read from KV.
func (b *Breaker) List(ctx context.Context) ([]Status, error) {
	out, err := kvwatch.Collect(ctx, b.kv, func(e jetstream.KeyValueEntry) (Status, bool) {
		var st Status
		// Breakers are keyed by action id, which has no dot; the keys with
		// one are throttles, limits and their shared counters.
		return st, !strings.Contains(e.Key(), ".") && json.Unmarshal(e.Value(), &st) == nil
	})
	if err != nil {
		return nil, fmt.Errorf("list breakers: %w", err)
	}
	slices.SortFunc(out, func(a, c Status) int { return cmp.Compare(a.ActionID, c.ActionID) })
	return out, nil
}

// Reset closes the breaker of an action for every replica.
func (b *Breaker) Reset(ctx context.Context, actionID string) (Status, error) {
	b.refresh(ctx, actionID)
	before, after, err := b.update(ctx, actionID, func(st *Status) bool {
		*st = Status{State: Closed, Generation: st.Generation + 1, Reason: "reset by an admin"}
		return true
	})
	if err != nil {
		return Status{}, err
	}
	if before.State != Closed {
		b.onChange(Transition{ActionID: actionID, From: before.State, To: Closed, Generation: after.Generation, Reason: after.Reason})
	}
	return *after, nil
}

// Snapshot returns the states held in memory, those of the actions this
// replica called lately, without a KV round trip (for metrics).
func (b *Breaker) Snapshot() []Status {
	var out []Status
	b.cache.Each(func(_ string, st *Status) { out = append(out, *st) })
	return out
}
