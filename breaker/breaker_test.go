package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/natstest"
	"customactions/internal/testclock"
)

type fixture struct {
	srv   *natstest.Server
	kv    jetstream.KeyValue
	clock *testclock.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "action_breakers", Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, kv: kv, clock: testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))}
}

// replica is one Breaker with its own connection and the transitions it made.
type replica struct {
	*Breaker
	mu          sync.Mutex
	transitions []Transition
	errs        atomic.Int64
}

func (f *fixture) replica(t *testing.T, s Settings, opts ...Option) *replica {
	t.Helper()
	_, js := natstest.Connect(t, f.srv)
	kv, err := js.KeyValue(t.Context(), "action_breakers")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{}
	b, err := New(kv, s, append([]Option{WithClock(f.clock.Now),
		OnTransition(func(tr Transition) { r.mu.Lock(); r.transitions = append(r.transitions, tr); r.mu.Unlock() }),
		OnError(func(string, error) { r.errs.Add(1) })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.Breaker = b
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := b.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *replica) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, tr := range r.transitions {
		out = append(out, tr.From.String()+">"+tr.To.String())
	}
	return out
}

// outcome runs one live call through the breaker; it reports whether the
// call was allowed.
func (r *replica) outcome(t *testing.T, o Outcome) bool {
	t.Helper()
	done, err := r.Allow(t.Context(), "act")
	if errors.Is(err, ErrOpen) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	done(o)
	return true
}

// waitState waits until the replica's view of act is state.
func waitState(t *testing.T, r *replica, state State) Status {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st := r.Get("act"); st.State == state {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("state is %s, want %s", r.Get("act").State, state)
	return Status{}
}

func TestOneReplicaOpensProbesAndCloses(t *testing.T) {
	f := newFixture(t)
	r := f.replica(t, Settings{Consecutive: 5, Cooldown: 30 * time.Second})
	for i := range 4 {
		if !r.outcome(t, Failure) {
			t.Fatalf("call %d refused before the threshold", i)
		}
	}
	if r.Get("act").State == Open {
		t.Fatal("opened after 4 failures; the threshold is 5")
	}
	r.outcome(t, Failure)
	st := waitState(t, r, Open)
	if st.Generation != 1 || st.CooldownMS != 30000 {
		t.Errorf("open state %+v", st)
	}
	if r.outcome(t, Failure) {
		t.Fatal("a call went through an open breaker")
	}
	f.clock.Advance(29 * time.Second)
	if r.outcome(t, Failure) {
		t.Fatal("a call went through before the cool-down ended")
	}
	f.clock.Advance(time.Second)
	done, err := r.Allow(t.Context(), "act")
	if err != nil {
		t.Fatalf("no probe after the cool-down: %v", err)
	}
	if _, err := r.Allow(t.Context(), "act"); !errors.Is(err, ErrOpen) {
		t.Fatal("a second call went through while the probe runs")
	}
	done(Success)
	waitState(t, r, Closed)
	if !r.outcome(t, Success) {
		t.Fatal("closed breaker refused a call")
	}
	want := []string{"closed>open", "open>half_open", "half_open>closed"}
	if got := r.events(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("transitions %v, want %v", got, want)
	}
}

func TestFailedProbeReopensWithLongerCooldown(t *testing.T) {
	f := newFixture(t)
	r := f.replica(t, Settings{Consecutive: 2, Cooldown: 10 * time.Second, MaxCooldown: 30 * time.Second})
	r.outcome(t, Failure)
	r.outcome(t, Failure)
	waitState(t, r, Open)
	for _, wantCool := range []int64{20000, 30000, 30000} {
		f.clock.Advance(time.Hour)
		if !r.outcome(t, Failure) { // the probe fails
			t.Fatal("no probe")
		}
		st := waitState(t, r, Open)
		if st.CooldownMS != wantCool {
			t.Errorf("cool-down after a failed probe = %d ms, want %d", st.CooldownMS, wantCool)
		}
	}
}

func TestTwoReplicasAddUpFailures(t *testing.T) {
	f := newFixture(t)
	s := Settings{MinCalls: 10, FailureRatio: 0.5, Consecutive: 100}
	a, b := f.replica(t, s), f.replica(t, s)
	// Each replica alone sees 5 calls, under MinCalls; together 10 with 6 failures.
	for _, r := range []*replica{a, b} {
		r.outcome(t, Success)
		r.outcome(t, Failure)
		r.outcome(t, Success)
		r.outcome(t, Failure)
		r.outcome(t, Failure)
	}
	a.Flush()
	b.Flush()
	waitState(t, a, Open)
	waitState(t, b, Open)
	if a.outcome(t, Failure) || b.outcome(t, Failure) {
		t.Error("a replica let a call through after the breaker opened")
	}
	opened := len(a.events()) + len(b.events())
	if opened != 1 {
		t.Errorf("%d transitions reported, want exactly 1 breaker_opened", opened)
	}
}

func TestExactlyOneProbeAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	s := Settings{Consecutive: 1, Cooldown: time.Second}
	a, b := f.replica(t, s), f.replica(t, s)
	a.outcome(t, Failure)
	waitState(t, a, Open)
	waitState(t, b, Open)
	f.clock.Advance(2 * time.Second)
	var probes atomic.Int64
	var wg sync.WaitGroup
	for _, r := range []*replica{a, b} {
		for range 20 {
			wg.Go(func() {
				if _, err := r.Allow(context.Background(), "act"); err == nil {
					probes.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if n := probes.Load(); n != 1 {
		t.Errorf("%d probes let through, want exactly 1", n)
	}
}

func TestStaleOutcomeCannotFlipNewerState(t *testing.T) {
	f := newFixture(t)
	r := f.replica(t, Settings{Consecutive: 2, Cooldown: time.Minute})
	lateDone, err := r.Allow(t.Context(), "act") // a slow call of generation 0
	if err != nil {
		t.Fatal(err)
	}
	r.outcome(t, Failure)
	r.outcome(t, Failure)
	waitState(t, r, Open)
	if _, err := r.Reset(t.Context(), "act"); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, r, Closed)
	lateDone(Failure) // counted under generation 0: ignored
	lateDone2, _ := r.Allow(t.Context(), "act")
	lateDone2(Failure)
	r.Flush()
	time.Sleep(50 * time.Millisecond)
	now := r.Get("act")
	if now.State != Closed || now.Consecutive != 1 || now.Generation != st.Generation {
		t.Errorf("state %+v: the stale failure was counted or flipped the state", now)
	}
}

func TestResetClosesForEveryReplica(t *testing.T) {
	f := newFixture(t)
	s := Settings{Consecutive: 1, Cooldown: time.Hour, MaxCooldown: 2 * time.Hour}
	a, b := f.replica(t, s), f.replica(t, s)
	a.outcome(t, Failure)
	waitState(t, b, Open)
	st, err := b.Reset(t.Context(), "act")
	if err != nil || st.State != Closed {
		t.Fatalf("reset: %+v %v", st, err)
	}
	waitState(t, a, Closed)
	if !a.outcome(t, Success) || !b.outcome(t, Success) {
		t.Error("a call was refused after the reset")
	}
	list, err := a.List(t.Context())
	if err != nil || len(list) != 1 || list[0].State != Closed || list[0].ActionID != "act" {
		t.Errorf("list %+v %v", list, err)
	}
}

func TestFailsOpenWithoutKV(t *testing.T) {
	f := newFixture(t)
	r := f.replica(t, Settings{Consecutive: 1, Cooldown: time.Second})
	r.outcome(t, Failure)
	waitState(t, r, Open)
	f.clock.Advance(time.Minute)
	f.srv.Shutdown()
	f.srv.WaitForShutdown()
	for i := range 3 {
		done, err := r.Allow(t.Context(), "act")
		if err != nil {
			t.Fatalf("call %d refused with KV down: %v", i, err)
		}
		done(Failure)
	}
	if r.errs.Load() == 0 {
		t.Error("the KV failure was not reported")
	}
}

func TestStateText(t *testing.T) {
	for _, st := range []State{Closed, Open, HalfOpen} {
		b, err := st.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalText(b); err != nil || back != st {
			t.Errorf("%s: round trip gave %s, %v", st, back, err)
		}
	}
	var st State
	if err := st.UnmarshalText([]byte("ajar")); err == nil {
		t.Error("unknown state name accepted")
	}
	if _, err := State(7).MarshalText(); err == nil {
		t.Error("unknown state encoded")
	}
	if Outcome(9).String() != "ignored" || Success.String() != "success" || Failure.String() != "failure" {
		t.Error("outcome names")
	}
}

func TestReadyToTrip(t *testing.T) {
	s := Settings{MinCalls: 4, FailureRatio: 0.5, Consecutive: 3}.WithDefaults()
	for _, tc := range []struct {
		name string
		c    Counts
		want bool
	}{
		{"nothing", Counts{}, false},
		{"consecutive", Counts{Successes: 10, Failures: 3, Consecutive: 3}, true},
		{"ratio below min calls", Counts{Successes: 1, Failures: 2, Consecutive: 1}, false},
		{"ratio at min calls", Counts{Successes: 2, Failures: 2, Consecutive: 1}, true},
		{"ratio below", Counts{Successes: 3, Failures: 2, Consecutive: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, got := s.readyToTrip(tc.c)
			if got != tc.want || (got && reason == "") {
				t.Errorf("readyToTrip(%+v) = %q, %v; want %v", tc.c, reason, got, tc.want)
			}
		})
	}
}

// TestThrottleIsSharedAndKeptApartFromBreakers: a pause written by one
// replica is seen by the other from its watch; a shorter one does not
// shorten it; throttle records are not listed as breakers.
func TestThrottleIsSharedAndKeptApartFromBreakers(t *testing.T) {
	f := newFixture(t)
	a, b := f.replica(t, Settings{}), f.replica(t, Settings{})
	until := time.Now().Add(time.Hour)
	if err := a.Throttle(t.Context(), "shop", until, 429); err != nil {
		t.Fatal(err)
	}
	if err := b.Throttle(t.Context(), "shop", time.Now().Add(time.Minute), 503); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.ThrottledUntil("shop").UnixMilli() != until.UnixMilli() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := b.ThrottledUntil("shop"); got.UnixMilli() != until.UnixMilli() {
		t.Errorf("the other replica sees the pause until %s, want %s", got, until)
	}
	list, err := a.List(t.Context())
	if err != nil || len(list) != 0 {
		t.Errorf("breakers listed: %+v, %v; want none", list, err)
	}
}

// TestLateReplicaReadsOnlyWhatItUses: a replica started after a breaker
// opened reads it from KV on its first call of that action (no initial
// load of the bucket), holds at most its bound of states, and drops a
// state another replica changed.
func TestLateReplicaReadsOnlyWhatItUses(t *testing.T) {
	f := newFixture(t)
	s := Settings{Consecutive: 1, Cooldown: time.Minute}
	a := f.replica(t, s)
	// Many quiet breakers in the bucket.
	for i := range 50 {
		data, _ := json.Marshal(Status{ActionID: fmt.Sprint("quiet-", i), State: Closed, Generation: 1})
		if _, err := f.kv.Put(t.Context(), fmt.Sprint("quiet-", i), data); err != nil {
			t.Fatal(err)
		}
	}
	a.outcome(t, Failure)
	waitState(t, a, Open)

	late := f.replica(t, s, WithCacheSize(5))
	if n := len(late.Snapshot()); n != 0 {
		t.Fatalf("a new replica holds %d states before any call", n)
	}
	if late.outcome(t, Success) {
		t.Fatal("a replica that started after the breaker opened let a call through")
	}
	for i := range 50 {
		if _, err := late.Allow(t.Context(), fmt.Sprint("quiet-", i)); err != nil {
			t.Fatalf("quiet-%d: %v", i, err)
		}
	}
	if n := len(late.Snapshot()); n > 5 {
		t.Fatalf("%d states held, bound 5", n)
	}
	// An admin closes it on the first replica: the late one follows.
	if _, err := a.Reset(t.Context(), "act"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !late.outcome(t, Success) {
		if time.Now().After(deadline) {
			t.Fatal("the late replica still refuses calls after a reset")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
