// Command ratelimit measures how closely the fleet holds an admin's rate
// limit (issue 14: within 10 % over 10 s whatever the number of
// replicas). It runs the embedded nats-server and -replicas consumers in
// one process, sets -rate calls/s (burst -burst) on one action, publishes
// far more triggers than the limit allows, and counts the calls the API
// received in a -window after a warm-up second.
//
//	go run ./perf/ratelimit -replicas 1
//	go run ./perf/ratelimit -replicas 3
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"customactions/breaker"
	"customactions/consumer"
	"customactions/events"
	"customactions/internal/perfrig"
)

func main() {
	replicas := flag.Int("replicas", 1, "consumer replicas")
	rate := flag.Float64("rate", 50, "limit, calls per second")
	burst := flag.Int("burst", 10, "burst of the limit")
	window := flag.Duration("window", 10*time.Second, "measured window, after a warm-up second")
	flag.Parse()

	ns, shutdown := perfrig.Server(0)
	defer shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Long trigger deadlines: every trigger waits for its permit.
	cfg := consumer.Config{Workers: 64, ActionConcurrency: 64, DefaultTimeout: 60 * time.Second, MaxTimeout: 60 * time.Second}.WithDefaults()

	var mu sync.Mutex
	var calls []time.Time
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
	}))
	defer api.Close()

	var first *breaker.Breaker
	for i := range *replicas {
		_, br := perfrig.Replica(ctx, ns.ClientURL(), fmt.Sprint("replica-", i), cfg, &breaker.Settings{Consecutive: 1000})
		if first == nil {
			first = br
		}
	}
	if _, err := first.SetLimits(ctx, breaker.Limits{ActionID: "limited", Rate: *rate, Burst: *burst}); err != nil {
		log.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // every replica's watch has the limits

	nc, js := perfrig.Connect(ns.ClientURL())
	defer nc.Close()
	total := int(*rate*(window.Seconds()+3)) + *burst + 200
	for i := range total {
		t := events.Trigger{ID: fmt.Sprint("t", i), ActionID: "limited", Source: "bot", Request: events.Request{Method: "GET", URL: api.URL}}
		data, _ := json.Marshal(t)
		if _, err := js.PublishAsync("actions.trigger.bot.limited", data); err != nil {
			log.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	start := time.Now()
	time.Sleep(time.Second + *window + 200*time.Millisecond)
	from, to := start.Add(time.Second), start.Add(time.Second+*window)
	mu.Lock()
	n := 0
	for _, c := range calls {
		if !c.Before(from) && c.Before(to) {
			n++
		}
	}
	mu.Unlock()
	want := *rate * window.Seconds()
	fmt.Printf("replicas=%d rate=%g/s burst=%d: %d calls in %s after a warm-up second (want %g: %+.1f %%)\n",
		*replicas, *rate, *burst, n, *window, want, (float64(n)-want)/want*100)
}
