// Command neighbours is the noisy-neighbour scenario of issue 14: three
// actions at -rate triggers/s each for -duration, one whose API hangs
// (never answers), one whose API answers 429 with Retry-After: 2 half of
// the time, and a healthy one (-latency per call). It runs the embedded
// nats-server and -replicas consumers in one process, and reports the
// healthy action's latency (publish to result), the calls each API got,
// the calls the 429 API got while a Retry-After it gave was running, and,
// per action, triggers published and results stored. -healthy makes all
// three APIs healthy (the baseline).
//
//	go run ./perf/neighbours -rate 100 -duration 20s
//	go run ./perf/neighbours -rate 100 -duration 20s -healthy
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"customactions/breaker"
	"customactions/consumer"
	"customactions/events"
	"customactions/internal/perfrig"
)

func main() {
	rate := flag.Int("rate", 100, "triggers per second per action")
	duration := flag.Duration("duration", 20*time.Second, "how long triggers are published")
	latency := flag.Duration("latency", 10*time.Millisecond, "latency of the healthy API")
	workers := flag.Int("workers", 64, "workers per replica")
	replicas := flag.Int("replicas", 1, "consumer replicas")
	healthy := flag.Bool("healthy", false, "all three APIs healthy (the baseline)")
	flag.Parse()

	ns, shutdown := perfrig.Server(0)
	defer shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := consumer.Config{Workers: *workers}.WithDefaults()

	var hangCalls, flakyCalls, flakyIgnored, healthyCalls atomic.Int64
	hang := make(chan struct{})
	hangAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangCalls.Add(1)
		if *healthy {
			time.Sleep(*latency)
			return
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hangAPI.Close()
	defer close(hang)
	var flakyMu sync.Mutex
	var pausedFrom, pausedUntil time.Time
	var flakyN int
	flakyAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flakyCalls.Add(1)
		arrived := time.Now()
		time.Sleep(*latency)
		if *healthy {
			return
		}
		flakyMu.Lock()
		// A call ignored a Retry-After when it arrived after a 429 was
		// sent and before the pause it asked for ended; calls already in
		// flight when the 429 went out could not know of it.
		if arrived.After(pausedFrom) && arrived.Before(pausedUntil) {
			flakyIgnored.Add(1)
		}
		flakyN++
		limited := flakyN%2 == 0
		if limited {
			pausedFrom, pausedUntil = time.Now(), time.Now().Add(2*time.Second)
		}
		flakyMu.Unlock()
		if limited {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer flakyAPI.Close()
	healthyAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		healthyCalls.Add(1)
		time.Sleep(*latency)
	}))
	defer healthyAPI.Close()

	for i := range *replicas {
		perfrig.Replica(ctx, ns.ClientURL(), fmt.Sprint("replica-", i), cfg, &breaker.Settings{})
	}

	nc, js := perfrig.Connect(ns.ClientURL())
	defer nc.Close()
	actions := []struct{ id, url string }{{"healthy", healthyAPI.URL}, {"hanging", hangAPI.URL}, {"ratelimited", flakyAPI.URL}}
	var sentMu sync.Mutex
	sent := map[string]time.Time{}
	var latMu sync.Mutex
	var healthyLat []time.Duration
	stored := map[string]*atomic.Int64{}
	for _, a := range actions {
		stored[a.id] = &atomic.Int64{}
	}
	sub, err := nc.Subscribe("actions.result.*", func(m *nats.Msg) {
		var r events.Result
		if json.Unmarshal(m.Data, &r) != nil {
			return
		}
		if c := stored[r.ActionID]; c != nil {
			c.Add(1)
		}
		if r.ActionID == "healthy" {
			sentMu.Lock()
			at, ok := sent[r.TriggerID]
			sentMu.Unlock()
			if ok {
				latMu.Lock()
				healthyLat = append(healthyLat, time.Since(at))
				latMu.Unlock()
			}
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Unsubscribe()

	published := 0
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	end := time.Now().Add(*duration)
	for n := 0; time.Now().Before(end); n++ {
		<-tick.C
		for _, a := range actions {
			id := fmt.Sprintf("%s-%d", a.id, n)
			t := events.Trigger{ID: id, ActionID: a.id, Source: "bot", Request: events.Request{Method: "GET", URL: a.url}}
			data, _ := json.Marshal(t)
			sentMu.Lock()
			sent[id] = time.Now()
			sentMu.Unlock()
			if _, err := js.PublishAsync("actions.trigger.bot."+a.id, data); err != nil {
				log.Fatal(err)
			}
		}
		published++
	}
	tick.Stop()
	wait := time.Now().Add(90 * time.Second)
	for time.Now().Before(wait) {
		done := true
		for _, a := range actions {
			if stored[a.id].Load() < int64(published) {
				done = false
			}
		}
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	latMu.Lock()
	slices.Sort(healthyLat)
	pct := func(p float64) time.Duration {
		if len(healthyLat) == 0 {
			return 0
		}
		return healthyLat[int(p*float64(len(healthyLat)-1))]
	}
	fmt.Printf("healthy=%v rate=%d/s/action duration=%s replicas=%d workers=%d: healthy action p50 %s p99 %s max %s (%d results)\n",
		*healthy, *rate, *duration, *replicas, *workers, pct(0.5).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond),
		pct(1).Round(100*time.Microsecond), len(healthyLat))
	latMu.Unlock()
	fmt.Printf("  calls: healthy %d, hanging %d, 429 API %d (of which during a Retry-After it gave: %d)\n",
		healthyCalls.Load(), hangCalls.Load(), flakyCalls.Load(), flakyIgnored.Load())
	for _, a := range actions {
		fmt.Printf("  %s: published %d, results %d\n", a.id, published, stored[a.id].Load())
	}
}
