// Command streamcap measures what one trigger stream costs nats-server and
// how much of that cost is serial: the work one stream's leader (and one
// durable consumer on it) does on one goroutine at a time, whatever the
// cores. The serial time per trigger bounds one stream at 1/serial
// triggers/s on any machine; that is the rate past which the triggers need
// partitions (ACTIONS_PARTITIONS).
//
// It runs nats-server in this process (one node for -replicas 1, a 3-node
// cluster for -replicas 3), and drives the work-queue cycle of a trigger
// stream at full speed: async publishes with a Nats-Msg-Id (the duplicate
// window on), pulls by two iterators per stream (two replicas), one ack
// each. It reports triggers/s, the process's CPU per trigger and writes a
// CPU profile; streamcap.sh reads the serial functions' share from it.
//
//	go run ./perf/streamcap -replicas 3 -streams 1 -n 200000 -cpuprofile /tmp/r3s1.prof
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/embedded"
)

func main() {
	replicas := flag.Int("replicas", 1, "1 (one node) or 3 (3-node cluster)")
	streams := flag.Int("streams", 1, "trigger streams (partitions)")
	n := flag.Int("n", 200000, "triggers")
	size := flag.Int("size", 600, "bytes per trigger")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured window")
	publishOnly := flag.Bool("publish-only", false, "a limits stream with no consumer: the results' and log events' streams")
	window := flag.Duration("window", 2*time.Minute, "duplicate window of the streams (nats-server keeps every message id of the window in memory)")
	flag.Parse()
	if err := run(*replicas, *streams, *n, *size, *cpuprofile, *publishOnly, *window); err != nil {
		log.Fatal(err)
	}
}

func run(replicas, streams, n, size int, cpuprofile string, publishOnly bool, window time.Duration) error {
	dir, err := os.MkdirTemp("", "streamcap")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	count := 1
	if replicas > 1 {
		count = 3
	}
	nodes, err := embedded.StartCluster(dir, "streamcap", count)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range nodes {
			s.Shutdown()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The producers' and each replica's connections, spread over the nodes.
	connect := func(i int) (jetstream.JetStream, *nats.Conn, error) {
		nc, err := nats.Connect(nodes[i%len(nodes)].ClientURL())
		if err != nil {
			return nil, nil, err
		}
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
		return js, nc, err
	}
	js, nc, err := connect(0)
	if err != nil {
		return err
	}
	defer nc.Close()
	var conss []jetstream.Consumer
	for k := range streams {
		name := "TRIGGERS_P" + strconv.Itoa(k)
		retention := jetstream.WorkQueuePolicy
		if publishOnly {
			retention = jetstream.LimitsPolicy
		}
		if err := retry(ctx, func() error {
			_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"t." + strconv.Itoa(k) + ".>"},
				Retention: retention, Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: window})
			return err
		}); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if publishOnly {
			continue
		}
		var cons jetstream.Consumer
		if err := retry(ctx, func() (err error) {
			cons, err = js.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: 30 * time.Second, MaxAckPending: 20000})
			return err
		}); err != nil {
			return fmt.Errorf("consumer on %s: %w", name, err)
		}
		conss = append(conss, cons)
	}

	var acked atomic.Int64
	var its []jetstream.MessagesContext
	var wg sync.WaitGroup
	for k, cons := range conss {
		for r := range 2 {
			cjs, cnc, err := connect(1 + 2*k + r)
			if err != nil {
				return err
			}
			defer cnc.Close()
			c, err := cjs.Consumer(ctx, "TRIGGERS_P"+strconv.Itoa(k), "c")
			if err != nil {
				return err
			}
			_ = cons
			it, err := c.Messages(jetstream.PullMaxMessages(320))
			if err != nil {
				return err
			}
			its = append(its, it)
			wg.Go(func() {
				for {
					m, err := it.Next()
					if err != nil {
						return
					}
					_ = m.Ack()
					acked.Add(1)
				}
			})
		}
	}

	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cpu0 := cpuTime()
	start := time.Now()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'x'
	}
	const publishers = 4
	var pubErrs atomic.Int64
	var pw sync.WaitGroup
	for p := range publishers {
		pjs, pnc, err := connect(p)
		if err != nil {
			return err
		}
		defer pnc.Close()
		pw.Go(func() {
			for i := p; i < n; i += publishers {
				k := i % streams
				msg := &nats.Msg{Subject: "t." + strconv.Itoa(k) + ".inbox.a" + strconv.Itoa(i%64), Data: payload, Header: nats.Header{}}
				msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%036d", i)) // as long as a UUID
				if _, err := pjs.PublishMsgAsync(msg); err != nil {
					pubErrs.Add(1)
				}
			}
			<-pjs.PublishAsyncComplete()
		})
	}
	pw.Wait()
	published := time.Since(start)
	for !publishOnly && acked.Load() < int64(n)-pubErrs.Load() && time.Since(start) < 5*time.Minute {
		time.Sleep(time.Millisecond)
	}
	// The acks are sent; wait until the servers processed them.
	for _, cons := range conss {
		for {
			info, err := cons.Info(ctx)
			if err == nil && info.NumAckPending == 0 && info.NumPending == 0 {
				break
			}
			if time.Since(start) > 5*time.Minute {
				return fmt.Errorf("not all triggers acked after 5 min: %v %v", info, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	for _, it := range its {
		it.Stop()
	}
	// The heap that stays: the stored messages' caches and the message
	// ids of the duplicate window (compare -window 1s).
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("publish_only=%t replicas=%d streams=%d triggers=%d size=%d elapsed=%.2fs rate=%.0f/s published_in=%.2fs cpu_us_per_trigger=%.1f pub_errors=%d window=%s heap_mb=%.1f\n",
		publishOnly, replicas, streams, n, size, elapsed.Seconds(), float64(n)/elapsed.Seconds(), published.Seconds(),
		float64(cpu.Microseconds())/float64(n), pubErrs.Load(), window, float64(ms.HeapInuse)/(1<<20))
	return nil
}

// cpuTime is the CPU time (user + system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// retry runs f until it succeeds or ctx ends (a new cluster may not have a
// meta leader yet).
func retry(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
