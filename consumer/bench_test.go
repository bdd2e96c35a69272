package consumer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
	"customactions/events"
)

// BenchmarkPipeline measures the whole flow of one trigger, end to end:
// publish, pull, validate, text token, HTTP call, result and log event
// publish, ack; over a real embedded JetStream server and a local API.
// ns/op is per trigger with 64 workers; allocs/op counts the whole process
// (server and client) per trigger.
func BenchmarkPipeline(b *testing.B) {
	b.Run("consumer", func(b *testing.B) { benchPipeline(b, (*benchHarness).startBench) })
	b.Run("floor", func(b *testing.B) {
		benchPipeline(b, func(h *benchHarness) { h.startFloor(h.cfg.Workers, false) })
	})
	b.Run("floor-contract-writes", func(b *testing.B) {
		benchPipeline(b, func(h *benchHarness) { h.startFloor(h.cfg.Workers, true) })
	})
}

// benchPipeline publishes b.N triggers and waits for their results, with
// the pipeline that start runs.
func benchPipeline(b *testing.B, start func(*benchHarness)) {
	h := newBenchHarness(b)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	}))
	defer api.Close()
	tok := &auth.Token{ID: "bench-text", Type: "text", Value: "bench-secret", Prefix: "Bearer ", Header: "Authorization"}
	if _, err := auth.NewStore(h.res.Tokens, nil).Put(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{}, 1024)
	sub, err := h.nc.Subscribe("actions.result.>", func(*nats.Msg) { done <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	start(h)
	payload := func(i int) *nats.Msg {
		tr := events.Trigger{ID: "b" + strconv.Itoa(i), ActionID: "bench-action", Source: "inbox", TokenID: "bench-text",
			Request: events.Request{Method: "POST", URL: api.URL + "/v1/echo", Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"n":123}`},
			Context: json.RawMessage(`{"sent_ns":1}`)}
		data, _ := json.Marshal(tr)
		m := &nats.Msg{Subject: "actions.trigger.inbox.bench-action", Data: data, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, tr.ID)
		return m
	}
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := range b.N {
			if _, err := h.js.PublishMsgAsync(payload(i)); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	for range b.N {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatal("no result within 30s")
		}
	}
}

// BenchmarkDecode measures trigger decoding and validation alone.
func BenchmarkDecode(b *testing.B) {
	s := events.NewSubjects("")
	data := []byte(`{"id":"trg_01JD6Y3K2Q","action_id":"bench-action","source":"inbox","token_id":"bench-text","request":{"method":"POST","url":"http://127.0.0.1:18080/v1/echo","headers":{"Content-Type":"application/json"},"body":"{\"n\":123}"},"context":{"sent_ns":1}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Decode(s, "actions.trigger.inbox.bench-action", data, events.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
