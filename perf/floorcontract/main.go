// Command floorcontract is the shared load harness's floor pipeline plus the two
// writes the contract adds to every trigger, done in the plainest way: the
// result carries Nats-Msg-Id "result-<trigger id>" (so the server
// deduplicates it) and a log event is published to actions.log.<action_id>
// and its ack awaited before the trigger is acked. Nothing else of the
// consumer's work is done (no validation beyond JSON, no token store, no
// breaker, no response capture, no metrics).
//
// It is the floor of any implementation of the contract, measured with the
// same harness as `perf floor` (perf/run-all.sh):
//
//	bench.sh -name floor-contract -c 16 -- '/tmp/perf/bin/floorcontract -nats $NATS_URL -concurrency $C'
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/floor"
)

func main() {
	url := flag.String("nats", nats.DefaultURL, "NATS server URL")
	conc := flag.Int("concurrency", 16, "messages processed in parallel")
	prefetch := flag.Int("prefetch", 256, "messages buffered beyond the workers (as perf floor)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *url, *conc, *prefetch); err != nil {
		log.Print(err)
	}
}

func run(ctx context.Context, url string, conc, prefetch int) error {
	nc, err := nats.Connect(url, nats.Name("floor-contract"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "ACTIONS_LOGS", Subjects: []string{"actions.log.>"},
		Storage: jetstream.FileStorage, MaxAge: 7 * 24 * time.Hour}); err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "ACTIONS_TRIGGERS", jetstream.ConsumerConfig{
		Durable: "floor", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: conc + prefetch,
	})
	if err != nil {
		return err
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(conc + prefetch))
	if err != nil {
		return err
	}
	p := &floor.Pipeline{JS: js, Client: floor.NewClient(conc), ContractWrites: true}
	done := make(chan struct{})
	go func() { p.Run(msgs, conc); close(done) }()
	<-ctx.Done()
	msgs.Stop() // workers finish the message they hold
	<-done
	return nc.Drain()
}
