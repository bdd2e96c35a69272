// Package floor is the reference the consumer's performance is measured
// against: the pipeline of the shared load harness's `perf floor` (decode a trigger,
// call its URL with the bench bearer token, publish the result and wait for
// its ack, ack the trigger), optionally with the two writes the contract
// adds to every trigger. It serves BenchmarkPipeline in the consumer package
// and the perf/floorcontract command; the service does not use it.
package floor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pipeline handles triggers the way the floor does.
type Pipeline struct {
	JS     jetstream.JetStream
	Client *http.Client
	// ContractWrites adds what the contract asks of every trigger, done the
	// plainest way: the result carries Nats-Msg-Id "result-<trigger id>"
	// (the server deduplicates it) and a small log event is published to
	// actions.log.<action_id> and its ack awaited before the trigger is
	// acked.
	ContractWrites bool
}

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

// Run hands the messages of msgs to workers goroutines until msgs is
// stopped, then waits for them.
func (p *Pipeline) Run(msgs jetstream.MessagesContext, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				msg, err := msgs.Next()
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				if err == nil {
					p.Handle(msg)
				}
			}
		})
	}
	wg.Wait()
}

// Handle runs one trigger: a bad one is terminated, one whose result could
// not be stored is nak'ed.
func (p *Pipeline) Handle(msg jetstream.Msg) {
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
		if resp, err = p.Client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			res.HTTPStatus = resp.StatusCode
		}
	}
	if err != nil || res.HTTPStatus < 200 || res.HTTPStatus > 299 {
		res.Status = "failed"
	}
	data, _ := json.Marshal(res)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !p.ContractWrites {
		if _, err := p.JS.Publish(ctx, "actions.result."+t.ActionID, data); err != nil {
			_ = msg.Nak()
			return
		}
		_ = msg.Ack()
		return
	}
	ev, _ := json.Marshal(logEvent{Time: time.Now().UTC().Format(time.RFC3339Nano), Level: "info", Event: "action_" + res.Status,
		ActionID: t.ActionID, TriggerID: t.ID, Message: t.Request.Method + " " + t.Request.URL, Context: t.Context})
	fut, err := p.JS.PublishAsync("actions.log."+t.ActionID, ev)
	if err != nil {
		_ = msg.Nak()
		return
	}
	if _, err := p.JS.Publish(ctx, "actions.result."+t.ActionID, data, jetstream.WithMsgID("result-"+t.ID)); err != nil {
		_ = msg.Nak()
		return
	}
	select {
	case <-fut.Ok():
		_ = msg.Ack()
	case <-fut.Err():
		_ = msg.Nak()
	case <-ctx.Done():
		_ = msg.Nak()
	}
}

// NewClient is the floor's HTTP client: keep-alive, workers idle
// connections per host.
func NewClient(workers int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, workers
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}
