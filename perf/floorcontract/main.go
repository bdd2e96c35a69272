// Command floorcontract is ../shared/perf's floor pipeline plus the two
// writes the contract adds to every trigger, done in the plainest way: the
// result carries Nats-Msg-Id "result-<trigger id>" (so the server
// deduplicates it) and a log event is published to actions.log.<action_id>
// and its ack awaited before the trigger is acked. Nothing else of the
// consumer's work is done (no validation beyond JSON, no token store, no
// breaker, no response capture, no metrics).
//
// It is the floor of any implementation of the contract, measured with the
// same harness as `perf floor`:
//
//	bench.sh -name floor-contract -c 16 -- '/tmp/perf/bin/floorcontract -nats $NATS_URL -concurrency $C'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type request struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type trigger struct {
	ID       string          `json:"id"`
	ActionID string          `json:"action_id"`
	Request  request         `json:"request"`
	Context  json.RawMessage `json:"context"`
}

type result struct {
	TriggerID  string          `json:"trigger_id"`
	ActionID   string          `json:"action_id"`
	Status     string          `json:"status"`
	HTTPStatus int             `json:"http_status"`
	Attempts   int             `json:"attempts"`
	Context    json.RawMessage `json:"context"`
}

type logEvent struct {
	Time      string          `json:"time"`
	Level     string          `json:"level"`
	Event     string          `json:"event"`
	ActionID  string          `json:"action_id"`
	TriggerID string          `json:"trigger_id"`
	Message   string          `json:"message"`
	Context   json.RawMessage `json:"context"`
}

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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, conc
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				msg, err := msgs.Next()
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				if err == nil {
					handle(js, client, msg)
				}
			}
		})
	}
	<-ctx.Done()
	msgs.Stop()
	wg.Wait()
	return nc.Drain()
}

func handle(js jetstream.JetStream, client *http.Client, msg jetstream.Msg) {
	var t trigger
	if err := json.Unmarshal(msg.Data(), &t); err != nil || t.ActionID == "" {
		_ = msg.Term()
		return
	}
	res := result{TriggerID: t.ID, ActionID: t.ActionID, Status: "succeeded", Attempts: 1, Context: t.Context}
	req, err := http.NewRequest(t.Request.Method, t.Request.URL, strings.NewReader(t.Request.Body))
	if err == nil {
		for k, v := range t.Request.Headers {
			req.Header.Set(k, v)
		}
		req.Header.Set("Authorization", "Bearer bench-secret")
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			res.HTTPStatus = resp.StatusCode
		}
	}
	if err != nil || res.HTTPStatus < 200 || res.HTTPStatus > 299 {
		res.Status = "failed"
	}
	data, _ := json.Marshal(res)
	ev, _ := json.Marshal(logEvent{Time: time.Now().UTC().Format(time.RFC3339Nano), Level: "info", Event: "action_" + res.Status,
		ActionID: t.ActionID, TriggerID: t.ID, Message: t.Request.Method + " " + t.Request.URL, Context: t.Context})
	fut, err := js.PublishAsync("actions.log."+t.ActionID, ev)
	if err != nil {
		_ = msg.Nak()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "actions.result."+t.ActionID, data, jetstream.WithMsgID("result-"+t.ID)); err != nil {
		_ = msg.Nak()
		return
	}
	select {
	case <-fut.Ok():
	case <-fut.Err():
		_ = msg.Nak()
		return
	case <-ctx.Done():
		_ = msg.Nak()
		return
	}
	_ = msg.Ack()
}
