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
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
	"customactions/breaker"
	"customactions/consumer"
	"customactions/events"
	"customactions/internal/netguard"
)

func main() {
	replicas := flag.Int("replicas", 1, "consumer replicas")
	rate := flag.Float64("rate", 50, "limit, calls per second")
	burst := flag.Int("burst", 10, "burst of the limit")
	window := flag.Duration("window", 10*time.Second, "measured window, after a warm-up second")
	flag.Parse()

	dir, _ := os.MkdirTemp("", "ratelimit")
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server did not start")
	}
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
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			log.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		res, err := consumer.Setup(ctx, js, cfg)
		if err != nil {
			log.Fatal(err)
		}
		pub := events.NewPublisher(js, events.NewSubjects(cfg.Prefix))
		quiet := slog.New(slog.DiscardHandler)
		br, err := breaker.New(res.Breakers, breaker.Settings{Consecutive: 1000}, breaker.WithHolder(fmt.Sprint("replica-", i)),
			breaker.OnTransition(consumer.TransitionLog(pub, quiet, time.Now)))
		if err != nil {
			log.Fatal(err)
		}
		if err := br.Watch(ctx); err != nil {
			log.Fatal(err)
		}
		if first == nil {
			first = br
		}
		svc, err := consumer.New(js, res, cfg, consumer.WithHTTPClient(netguard.Policy{AllowPrivate: true}.Client(64)), consumer.WithBreaker(br),
			consumer.WithTokens(auth.NewStore(res.Tokens, nil), auth.NewManager(res.Fetched, auth.NewFetcher())))
		if err != nil {
			log.Fatal(err)
		}
		go func() { _ = svc.Run(ctx) }()
		<-svc.Ready()
	}
	if _, err := first.SetLimits(ctx, breaker.Limits{ActionID: "limited", Rate: *rate, Burst: *burst}); err != nil {
		log.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // every replica's watch has the limits

	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
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
