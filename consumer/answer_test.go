package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
)

// storedMsg is a message of a stream with its subject.
type storedMsg struct {
	Subject string
	Data    []byte
}

// readStored reads every message of stream matching filter.
func readStored(t *testing.T, js jetstream.JetStream, stream, filter string) []storedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []storedMsg
	if info.State.Msgs == 0 {
		return out
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			out = append(out, storedMsg{Subject: m.Subject(), Data: m.Data()})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
		if got == 0 {
			return out
		}
	}
}

// streamMsgs is the number of messages in stream.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestDeadLetterAfterResultPublishTimedOut: with no results stream but a
// core subscriber on the result subjects, every result publish times out
// (the subscriber receives it and nobody acknowledges it). The context the
// trigger was finished with has then run out; the dead-letter publish, the
// log event and the term must still happen, each with its own deadline. The
// trigger ends in the dead-letter stream with a reason, is no longer in the
// triggers stream, and the API was called at most MaxDeliver times. A
// rejected trigger of a malformed subject takes the same path and is
// dead-lettered on a well-formed subject.
func TestDeadLetterAfterResultPublishTimedOut(t *testing.T) {
	const maxDeliver = 2
	// ResultRetry as short as it goes: each result publish waits out its own
	// timeout, and retrying it longer only makes the test slower.
	h := newHarness(t, Config{MaxDeliver: maxDeliver, ResultRetry: time.Millisecond})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	ctx := t.Context()
	rep := h.start()
	<-rep.svc.Ready()
	if err := h.js.DeleteStream(ctx, h.cfg.ResultStream); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{} // result subject -> results received
	)
	sub, err := h.nc.Subscribe(h.subj.ResultWildcard(), func(m *nats.Msg) {
		mu.Lock()
		seen[m.Subject]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	h.trigger(&events.Trigger{ID: "stuck", ActionID: "act", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL}})
	h.publish("actions.trigger.inbox.a.b", []byte(`{"id":"stuck-bad"}`))

	var dead []DeadLetter
	deadline := time.Now().Add(90 * time.Second)
	for len(dead) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		dead, _ = ListDeadLetters(ctx, h.js, h.cfg)
	}
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2; api calls %d; process log:\n%s", len(dead), len(api.Calls()), h.logs.String())
	}
	byID := map[string]DeadLetter{}
	for _, d := range dead {
		byID[d.TriggerID] = d
	}
	if d := byID["stuck"]; d.Reason == "" || d.Subject != "actions.trigger.inbox.act" || d.DeadLetterTopic != "actions.dead.act" {
		t.Errorf("dead letter of the good trigger: %+v", d)
	}
	if d := byID["stuck-bad"]; d.Reason == "" || d.Subject != "actions.trigger.inbox.a.b" || d.DeadLetterTopic != "actions.dead._invalid" {
		t.Errorf("dead letter of the malformed trigger: %+v", d)
	}

	// Terminated: nothing pending or unacked, nothing left in the work queue.
	waitDrained(t, h)
	if n := streamMsgs(t, h.js, h.cfg.TriggerStream); n != 0 {
		t.Errorf("%d triggers left in %s, want 0", n, h.cfg.TriggerStream)
	}
	if n := len(api.Calls()); n > maxDeliver {
		t.Errorf("API got %d calls, want at most %d", n, maxDeliver)
	}
	// The scenario is the reported one: the results reached the subscriber
	// and their publishes timed out. (How often a result is published per
	// delivery is the result retry's business, not bounded here.)
	mu.Lock()
	if seen["actions.result.act"] == 0 || seen["actions.result._invalid"] == 0 {
		t.Errorf("the subscriber saw results %v, want some on actions.result.act and actions.result._invalid", seen)
	}
	mu.Unlock()
	deadEvents := map[string]bool{}
	for _, l := range h.logEvents(2, 5*time.Second) {
		if l.Event == events.EventDeadLettered {
			deadEvents[l.TriggerID] = true
		}
	}
	if !deadEvents["stuck"] || !deadEvents["stuck-bad"] {
		t.Errorf("trigger_dead_lettered log events for %v, want stuck and stuck-bad", deadEvents)
	}
}

// TestDeadLetterWithExpiredContext: deadLetter is handed a context that
// ran out already (as the result publish that timed out left it); the
// dead-letter publish, the log event and the term still happen, each with
// its own deadline.
func TestDeadLetterWithExpiredContext(t *testing.T) {
	h := newHarness(t, Config{})
	logger := slog.New(slog.NewJSONHandler(h.logs, nil))
	svc, err := New(h.js, h.res, h.cfg, WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	h.trigger(&events.Trigger{ID: "expired", ActionID: "act", Source: "inbox", Request: events.Request{Method: "GET", URL: "http://127.0.0.1:1/"}})
	batch, err := h.res.Triggers.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatal("no trigger fetched")
	}
	meta, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	r := &run{res: &events.Result{TriggerID: "expired", ActionID: "act", Source: "inbox"},
		infra: errors.New("publish result: context deadline exceeded")}
	svc.deadLetter(ctx, msg, meta, r)

	dead, err := ListDeadLetters(t.Context(), h.js, h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].TriggerID != "expired" || dead[0].Reason != r.infra.Error() {
		t.Fatalf("dead letters %+v, want the trigger with its reason; process log:\n%s", dead, h.logs.String())
	}
	found := false
	for _, l := range h.logEvents(1, 5*time.Second) {
		found = found || l.Event == events.EventDeadLettered && l.TriggerID == "expired"
	}
	if !found {
		t.Error("no trigger_dead_lettered log event")
	}
	// The term was confirmed before deadLetter returned.
	if n := streamMsgs(t, h.js, h.cfg.TriggerStream); n != 0 {
		t.Errorf("%d triggers left in %s after the term, want 0", n, h.cfg.TriggerStream)
	}
}

var wellFormedResult = regexp.MustCompile(`^actions\.(result|log)\.[A-Za-z0-9_-]{1,128}$`)

// TestMalformedTriggerSubjectRejected: a trigger published on a malformed
// subject, or with an unknown source, gets one rejected/invalid_trigger
// result on a well-formed result subject (the action id of the subject, or
// _invalid when there is none) and a trigger_rejected log event, is acked
// (never redelivered, nothing left in the stream), and the consumer goes on
// serving the next good trigger.
func TestMalformedTriggerSubjectRejected(t *testing.T) {
	h := newHarness(t, Config{})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	h.start()
	body := func(id, action, source string) []byte {
		b, err := json.Marshal(map[string]any{"id": id, "action_id": action, "source": source,
			"request": map[string]any{"method": "GET", "url": api.URL}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name        string
		subject     string
		data        []byte
		wantSubject string // of the result
	}{
		{"extra token", "actions.trigger.inbox.a.b", body("mal-1", "a.b", "inbox"), "actions.result._invalid"},
		{"extra token, no body names", "actions.trigger.inbox.a.b", []byte(`{"id":"mal-2"}`), "actions.result._invalid"},
		{"no action token", "actions.trigger.inbox", body("mal-3", "", "inbox"), "actions.result._invalid"},
		{"no action token, bad body", "actions.trigger.inbox", []byte(`{"id":"mal-4",`), "actions.result._invalid"},
		{"unknown source", "actions.trigger.email.act", body("mal-5", "act", "email"), "actions.result.act"},
	}
	for _, tc := range tests {
		h.publish(tc.subject, tc.data)
	}
	h.trigger(&events.Trigger{ID: "good-after", ActionID: "act", Source: "inbox", Request: events.Request{Method: "GET", URL: api.URL}})
	if r := h.result("good-after", 10*time.Second); r.Status != events.StatusSucceeded {
		t.Fatalf("good trigger after the malformed ones: %+v", r)
	}
	// Nothing redelivered, nothing left.
	waitDrained(t, h)
	if n := streamMsgs(t, h.js, h.cfg.TriggerStream); n != 0 {
		t.Errorf("%d triggers left in %s, want 0", n, h.cfg.TriggerStream)
	}

	results := map[string][]storedMsg{}
	for _, m := range readStored(t, h.js, h.cfg.ResultStream, h.subj.ResultWildcard()) {
		var r events.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		results[r.TriggerID] = append(results[r.TriggerID], m)
	}
	rejections := map[string][]string{} // trigger id -> subjects of trigger_rejected events
	for _, m := range readStored(t, h.js, h.cfg.LogStream, h.subj.LogWildcard()) {
		if !wellFormedResult.MatchString(m.Subject) {
			t.Errorf("log event on malformed subject %q", m.Subject)
		}
		var l events.LogEvent
		if err := json.Unmarshal(m.Data, &l); err != nil {
			t.Fatal(err)
		}
		if l.Event == events.EventTriggerRejected {
			rejections[l.TriggerID] = append(rejections[l.TriggerID], m.Subject)
		}
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := []string{"mal-1", "mal-2", "mal-3", "mal-4", "mal-5"}[i]
			if tc.name == "no action token, bad body" {
				id = "seq-4" // an id that cannot be read: the stream sequence
			}
			got := results[id]
			if len(got) != 1 {
				t.Fatalf("%d results for %s, want 1 (have %v)", len(got), id, keys(results))
			}
			if got[0].Subject != tc.wantSubject || !wellFormedResult.MatchString(got[0].Subject) {
				t.Errorf("result on %q, want %q", got[0].Subject, tc.wantSubject)
			}
			var r events.Result
			_ = json.Unmarshal(got[0].Data, &r)
			if r.Status != events.StatusRejected || r.Error == nil || r.Error.Code != events.CodeInvalidTrigger {
				t.Errorf("result %+v (error %+v), want rejected invalid_trigger", r, r.Error)
			}
			if r.Source != "" && !events.ValidSource(r.Source) {
				t.Errorf("result source %q is not a known source", r.Source)
			}
			if len(rejections[id]) != 1 {
				t.Errorf("%d trigger_rejected log events for %s, want 1", len(rejections[id]), id)
			}
		})
	}
	if n := len(api.Calls()); n != 1 {
		t.Errorf("API got %d calls, want only the good trigger's", n)
	}
}
