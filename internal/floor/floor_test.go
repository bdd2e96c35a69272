package floor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/natstest"
)

// TestPipeline: the reference calls the API with the bench token, stores a
// result, and with ContractWrites a log event, and the result carries
// Nats-Msg-Id so a second copy is dropped.
func TestPipeline(t *testing.T) {
	for _, contract := range []bool{false, true} {
		t.Run(map[bool]string{false: "floor", true: "contract writes"}[contract], func(t *testing.T) {
			srv := natstest.Start(t)
			_, js := natstest.Connect(t, srv)
			ctx := context.Background()
			for name, subj := range map[string]string{"ACTIONS_TRIGGERS": "actions.trigger.>", "ACTIONS_RESULTS": "actions.result.>", "ACTIONS_LOGS": "actions.log.>"} {
				cfg := jetstream.StreamConfig{Name: name, Subjects: []string{subj}}
				if name == "ACTIONS_TRIGGERS" {
					cfg.Retention = jetstream.WorkQueuePolicy
				}
				if _, err := js.CreateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			var authorized atomic.Int32
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "Bearer bench-secret" {
					authorized.Add(1)
				}
			}))
			defer api.Close()
			cons, err := js.CreateOrUpdateConsumer(ctx, "ACTIONS_TRIGGERS", jetstream.ConsumerConfig{Durable: "floor", AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := cons.Messages()
			if err != nil {
				t.Fatal(err)
			}
			p := &Pipeline{JS: js, Client: NewClient(2), ContractWrites: contract}
			done := make(chan struct{})
			go func() { p.Run(msgs, 2); close(done) }()
			defer func() { msgs.Stop(); <-done }()

			trig, _ := json.Marshal(map[string]any{"id": "t1", "action_id": "a", "source": "inbox",
				"request": map[string]any{"method": "POST", "url": api.URL, "body": "{}"}, "context": map[string]int{"n": 1}})
			for range 2 { // the same trigger twice: with contract writes, one result is stored
				if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "actions.trigger.inbox.a", Data: trig}); err != nil {
					t.Fatal(err)
				}
			}
			// Both triggers acked (the work queue is empty): their writes are stored.
			triggers, err := js.Stream(ctx, "ACTIONS_TRIGGERS")
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				info, err := triggers.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.State.Msgs == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d triggers still unacked", info.State.Msgs)
				}
			}
			results, err := natstest.ReadAll[map[string]any](js, "ACTIONS_RESULTS", "")
			if err != nil {
				t.Fatal(err)
			}
			logs, err := natstest.ReadAll[map[string]any](js, "ACTIONS_LOGS", "")
			if err != nil {
				t.Fatal(err)
			}
			wantResults, wantLogs := 2, 0
			if contract {
				wantResults, wantLogs = 1, 2
			}
			if authorized.Load() != 2 || len(results) != wantResults || len(logs) != wantLogs {
				t.Fatalf("authorized calls %d, results %d (want %d), log events %d (want %d)", authorized.Load(), len(results), wantResults, len(logs), wantLogs)
			}
			if results[0]["status"] != "succeeded" || results[0]["trigger_id"] != "t1" {
				t.Errorf("result = %v", results[0])
			}
		})
	}
}
