// Command bigresponses measures the memory the consumer holds when many
// large responses arrive at once (issue 13: 64 concurrent 1 MiB responses
// took 1.6 GB before the response memory budget). It runs the embedded
// nats-server, one consumer with -workers workers and an API on loopback
// that answers every call with -size bytes (-kind plain, or control bytes
// that JSON escaping inflates 6x), publishes -n triggers at once per round,
// waits for their results, and prints the process's peak RSS (VmHWM), the
// peak Go heap, the calls made and the results stored.
//
//	go run ./perf/bigresponses -n 64 -size 1048576 -kind control
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"customactions/consumer"
	"customactions/events"
	"customactions/internal/perfrig"
)

func main() {
	n := flag.Int("n", 64, "triggers published at once per round")
	rounds := flag.Int("rounds", 3, "rounds")
	size := flag.Int("size", 1<<20, "response body bytes")
	kind := flag.String("kind", "control", "plain or control (bytes JSON escapes as \\u0001)")
	workers := flag.Int("workers", 64, "consumer workers")
	gogc := flag.Int("gogc", 200, "GC percent (the service's default, ACTIONS_GC_PERCENT)")
	flag.Parse()
	debug.SetGCPercent(*gogc)

	ns, shutdown := perfrig.Server(8 << 20)
	defer shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := consumer.Config{Workers: *workers, ActionConcurrency: *workers}.WithDefaults() // one action: no bulkhead below the workers
	b := byte('a')
	if *kind == "control" {
		b = 1
	}
	body := []byte(strings.Repeat(string(b), *size))
	var calls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = w.Write(body)
	}))
	defer api.Close()
	perfrig.Replica(ctx, ns.ClientURL(), "bigresponses", cfg, nil)
	_, js := perfrig.Connect(ns.ClientURL())

	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
		}
	}()
	results, _ := js.Stream(ctx, cfg.ResultStream)
	start := time.Now()
	for round := range *rounds {
		for i := range *n {
			t := events.Trigger{ID: fmt.Sprintf("r%d-%d", round, i), ActionID: "big", Source: "bot",
				Request: events.Request{Method: "GET", URL: api.URL}}
			data, _ := json.Marshal(t)
			if _, err := js.Publish(ctx, "actions.trigger.bot.big", data); err != nil {
				log.Fatal(err)
			}
		}
		want := uint64((round + 1) * *n)
		for {
			info, err := results.Info(ctx)
			if err == nil && info.State.Msgs >= want {
				break
			}
			if time.Since(start) > 5*time.Minute {
				log.Fatalf("results did not arrive: %d calls", calls.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	close(stop)
	info, _ := results.Info(ctx)
	fmt.Printf("gogc=%d n=%d rounds=%d size=%d kind=%s workers=%d: %d calls, %d results in %s, peak heap in use %.0f MB, peak RSS %s\n",
		*gogc, *n, *rounds, *size, *kind, *workers, calls.Load(), info.State.Msgs, elapsed.Round(time.Millisecond),
		float64(peakHeap.Load())/(1<<20), vmHWM())
}

// vmHWM is the peak resident set size of the process.
func vmHWM() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
