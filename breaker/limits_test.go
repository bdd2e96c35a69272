package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"customactions/internal/natstest"
)

// liveReplicas returns n Breakers on one bucket with the real clock.
func liveReplicas(t *testing.T, n int) []*Breaker {
	t.Helper()
	f := newFixture(t)
	var out []*Breaker
	for i := range n {
		_, js := natstest.Connect(t, f.srv)
		kv, err := js.KeyValue(t.Context(), "action_breakers")
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(kv, Settings{}, WithHolder("replica-"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := b.Watch(ctx); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func waitLimits(t *testing.T, bs []*Breaker, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, b := range bs {
		for {
			if _, ok := b.GetLimits(id); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("limits not seen by every replica")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestRateLimitIsFleetWide: two replicas calling as fast as they can make
// Rate x seconds + Burst calls in all, within 10 %.
func TestRateLimitIsFleetWide(t *testing.T) {
	t.Parallel()
	bs := liveReplicas(t, 2)
	if _, err := bs[0].SetLimits(t.Context(), Limits{ActionID: "shop", Rate: 100, Burst: 10}); err != nil {
		t.Fatal(err)
	}
	waitLimits(t, bs, "shop")
	const window = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	for _, b := range bs {
		for range 8 {
			wg.Go(func() {
				for {
					release, err := b.Acquire(ctx, "shop")
					if err != nil {
						return
					}
					n.Add(1)
					release()
				}
			})
		}
	}
	wg.Wait()
	want := 100*window.Seconds() + 10
	if got := float64(n.Load()); got < 0.9*want || got > 1.1*want {
		t.Errorf("%v calls in %s at 100/s with a burst of 10 on 2 replicas, want %v within 10 %%", got, window, want)
	}
	if _, err := bs[1].Acquire(context.Background(), "other"); err != nil {
		t.Errorf("an action without limits: %v", err)
	}
}

// TestConcurrencyLimitIsFleetWide: never more than MaxConcurrent calls at
// once across replicas; a wait past the deadline is ErrLimited.
func TestConcurrencyLimitIsFleetWide(t *testing.T) {
	t.Parallel()
	bs := liveReplicas(t, 2)
	if _, err := bs[0].SetLimits(t.Context(), Limits{ActionID: "shop", MaxConcurrent: 3}); err != nil {
		t.Fatal(err)
	}
	waitLimits(t, bs, "shop")
	var in, peak, done atomic.Int64
	var wg sync.WaitGroup
	for _, b := range bs {
		for range 6 {
			wg.Go(func() {
				for range 5 {
					release, err := b.Acquire(context.Background(), "shop")
					if err != nil {
						t.Error(err)
						return
					}
					v := in.Add(1)
					for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
					}
					time.Sleep(10 * time.Millisecond)
					in.Add(-1)
					release()
					done.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if peak.Load() > 3 || done.Load() != 60 {
		t.Errorf("peak %d calls at once (limit 3), %d of 60 done", peak.Load(), done.Load())
	}
	// All three slots held: a caller with a deadline gets ErrLimited.
	var releases []func()
	for range 3 {
		r, err := bs[0].Acquire(context.Background(), "shop")
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := bs[1].Acquire(ctx, "shop"); !errors.Is(err, ErrLimited) {
		t.Errorf("a fourth call: %v, want ErrLimited", err)
	}
	for _, r := range releases {
		r()
	}
}

func TestLimitsAdmin(t *testing.T) {
	t.Parallel()
	bs := liveReplicas(t, 1)
	b := bs[0]
	if _, err := b.SetLimits(t.Context(), Limits{ActionID: "a", Rate: -1}); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("a negative rate: %v", err)
	}
	l, err := b.SetLimits(t.Context(), Limits{ActionID: "a", Rate: 2.5})
	if err != nil || l.Burst != 3 {
		t.Fatalf("set: %+v %v, want the burst filled to 3", l, err)
	}
	if _, err := b.SetLimits(t.Context(), Limits{ActionID: "b", MaxConcurrent: 2}); err != nil {
		t.Fatal(err)
	}
	list, err := b.ListLimits(t.Context())
	if err != nil || len(list) != 2 || list[0].ActionID != "a" || list[1].MaxConcurrent != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if st, err := b.List(t.Context()); err != nil || len(st) != 0 {
		t.Errorf("limits listed as breakers: %+v %v", st, err)
	}
	if had, err := b.DeleteLimits(t.Context(), "a"); err != nil || !had {
		t.Errorf("delete: %v %v", had, err)
	}
	if had, _ := b.DeleteLimits(t.Context(), "a"); had {
		t.Error("deleted twice")
	}
}
