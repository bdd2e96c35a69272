package consumer

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

// startFloor runs the reference pipeline of ../shared/perf (perf floor) on
// the harness's durable, in this process: decode, HTTP call with the bearer
// header, publish the result and wait for its ack, ack the trigger. It is
// what BenchmarkPipeline is compared with: the same server, API and load, no
// framework around the libraries.
//
// With contractWrites it also does the two writes the contract adds to
// every trigger, in the plainest way: the result carries Nats-Msg-Id
// (deduplicated by the server) and a small log event is published to
// ACTIONS_LOGS and its ack awaited too. That is the floor of any
// implementation of the contract.
func (h *benchHarness) startFloor(workers int, contractWrites bool) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	msgs, err := h.res.Triggers.Messages(jetstream.PullMaxMessages(workers + h.cfg.Prefetch))
	if err != nil {
		h.b.Fatal(err)
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
		Error      string          `json:"error,omitempty"`
		Context    json.RawMessage `json:"context"`
	}
	handle := func(msg jetstream.Msg) {
		var t trigger
		if err := json.Unmarshal(msg.Data(), &t); err != nil {
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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if !contractWrites {
			if _, err := h.js.Publish(ctx, "actions.result."+t.ActionID, data); err != nil {
				_ = msg.Nak()
				return
			}
			_ = msg.Ack()
			return
		}
		logEv, _ := json.Marshal(map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "level": "info",
			"event": "action_succeeded", "action_id": t.ActionID, "trigger_id": t.ID, "context": t.Context})
		fut, err := h.js.PublishAsync("actions.log."+t.ActionID, logEv)
		if err != nil {
			_ = msg.Nak()
			return
		}
		if _, err := h.js.Publish(ctx, "actions.result."+t.ActionID, data, jetstream.WithMsgID("result-"+t.ID)); err != nil {
			_ = msg.Nak()
			return
		}
		select {
		case <-fut.Ok():
		case <-fut.Err():
			_ = msg.Nak()
			return
		}
		_ = msg.Ack()
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				msg, err := msgs.Next()
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				if err == nil {
					handle(msg)
				}
			}
		})
	}
	h.b.Cleanup(func() { msgs.Stop(); wg.Wait() })
}
