package consumer

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"customactions/events"
	"customactions/internal/netguard"
)

func TestSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		rate     float64
		latency  time.Duration
		prefetch int
		want     Sizing
	}{
		{"issue's goal: 8000/s at 200 ms with a tail (mean 265 ms)", 8000, 265 * time.Millisecond, 64,
			Sizing{InFlight: 2120, Workers: 4288, ActionConcurrency: 3216, MaxAckPending: 4 * (4288 + 64)}},
		{"1000/s at 300 ms", 1000, 300 * time.Millisecond, 64, Sizing{InFlight: 300, Workers: 640, ActionConcurrency: 480, MaxAckPending: 2816}},
		{"a trickle still gets 64 workers", 1, 100 * time.Millisecond, 64, Sizing{InFlight: 1, Workers: 64, ActionConcurrency: 48, MaxAckPending: 512}},
		{"no prefetch", 100, time.Second, 0, Sizing{InFlight: 100, Workers: 256, ActionConcurrency: 192, MaxAckPending: 1024}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Size(tc.rate, tc.latency, tc.prefetch); got != tc.want {
				t.Errorf("Size(%g, %s, %d) = %+v, want %+v", tc.rate, tc.latency, tc.prefetch, got, tc.want)
			}
		})
	}
}

// TestCapacityDefaults: without an expected load the defaults are a bound
// of 1024 calls in flight (not 64: about 300/s at 200 ms); with one, the
// settings left zero come from Size; explicit settings are kept.
func TestCapacityDefaults(t *testing.T) {
	t.Parallel()
	type sizes struct{ Workers, ActionConcurrency, Prefetch, MaxAckPending int }
	for _, tc := range []struct {
		name string
		cfg  Config
		want sizes
	}{
		{"defaults", Config{}, sizes{1024, 256, 64, 4 * (1024 + 64)}},
		{"expected load", Config{ExpectedRate: 8000, ExpectedLatency: 265 * time.Millisecond}, sizes{4288, 3216, 64, 4 * (4288 + 64)}},
		{"expected load, no prefetch", Config{ExpectedRate: 1000, ExpectedLatency: 300 * time.Millisecond, Prefetch: NoPrefetch}, sizes{640, 480, 0, 2560}},
		{"explicit workers win over the expected load", Config{ExpectedRate: 8000, ExpectedLatency: time.Second, Workers: 100}, sizes{100, 75, 64, 656}},
		{"explicit settings", Config{Workers: 8, ActionConcurrency: 3, Prefetch: 5, MaxAckPending: 40}, sizes{8, 3, 5, 40}},
		{"explicit settings with an expected load", Config{ExpectedRate: 8000, ExpectedLatency: time.Second, Workers: 8, ActionConcurrency: 3, Prefetch: 5, MaxAckPending: 40}, sizes{8, 3, 5, 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.cfg.WithDefaults()
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := (sizes{c.Workers, c.ActionConcurrency, c.Prefetch, c.MaxAckPending}); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestExpectedLoadNeedsRateAndLatency(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{{ExpectedRate: 100}, {ExpectedLatency: time.Second}, {ExpectedRate: -1, ExpectedLatency: time.Second}} {
		if err := c.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "expected") {
			t.Errorf("%g/s at %s: %v, want an error about the expected load", c.ExpectedRate, c.ExpectedLatency, err)
		}
	}
}

// TestWorkersBoundCallsInFlight: workers start as they are needed, never
// more than Workers execute at once, and every trigger gets its result.
func TestWorkersBoundCallsInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 3, ActionConcurrency: 3})
	var now, peak atomic.Int64
	release := make(chan struct{})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if n := now.Add(1); n > peak.Load() {
			peak.Store(n)
		}
		<-release
		now.Add(-1)
	})
	h.start()
	const n = 12
	for i := range n {
		h.trigger(&events.Trigger{ID: fmt.Sprintf("w%d", i), ActionID: "act", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL}})
	}
	deadline := time.Now().Add(10 * time.Second)
	for now.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for _, r := range h.results(n, 30*time.Second) {
		if r.Status != events.StatusSucceeded {
			t.Errorf("%s: %s %+v", r.TriggerID, r.Status, r.Error)
		}
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("at most %d calls at once, want 3 (the workers)", p)
	}
}

// TestActionConnectionsUseSmallBuffers: the action transport is a clone
// with smaller buffers; the caller's client is not changed, and a
// transport with buffer sizes of its own is kept.
func TestActionConnectionsUseSmallBuffers(t *testing.T) {
	t.Parallel()
	c := netguard.Policy{AllowPrivate: true}.Client(8)
	got := smallBuffers(c)
	tr := got.Transport.(*http.Transport)
	if tr.ReadBufferSize != callReadBuffer || tr.WriteBufferSize != callWriteBuffer {
		t.Errorf("buffers %d/%d, want %d/%d", tr.ReadBufferSize, tr.WriteBufferSize, callReadBuffer, callWriteBuffer)
	}
	if orig := c.Transport.(*http.Transport); orig.ReadBufferSize != 0 || orig.WriteBufferSize != 0 || got == c {
		t.Error("the caller's client was changed")
	}
	if got.CheckRedirect == nil || tr.MaxIdleConnsPerHost != 8 || tr.DialContext == nil {
		t.Error("the clone lost the client's policy")
	}
	own := &http.Client{Transport: &http.Transport{ReadBufferSize: 64 << 10}}
	if smallBuffers(own) != own {
		t.Error("a transport with buffer sizes of its own was replaced")
	}
	other := &http.Client{Transport: http.NewFileTransport(http.Dir("."))}
	if smallBuffers(other) != other {
		t.Error("a transport that is not an *http.Transport was replaced")
	}
}
