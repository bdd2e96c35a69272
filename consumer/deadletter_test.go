package consumer

import (
	"context"
	"net/http"
	"testing"
	"time"

	"customactions/events"
)

// TestDeadLetterAfterMaxDeliver: when results cannot be stored (the results
// stream is gone), the trigger is retried with NakWithDelay and, on its
// last delivery, moved to the dead-letter stream with the reason and a log
// event. Replaying it once the fault is fixed gives its one result.
func TestDeadLetterAfterMaxDeliver(t *testing.T) {
	h := newHarness(t, Config{MaxDeliver: 2, ResultRetry: 500 * time.Millisecond})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	ctx := context.Background()
	h.start()
	if err := h.js.DeleteStream(ctx, h.cfg.ResultStream); err != nil {
		t.Fatal(err)
	}
	h.trigger(&events.Trigger{ID: "dl", ActionID: "act", Source: "inbox", Request: events.Request{Method: "POST", URL: api.URL}})

	var dead []DeadLetter
	deadline := time.Now().Add(20 * time.Second)
	for len(dead) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		dead, _ = ListDeadLetters(ctx, h.js, h.cfg)
	}
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1; api calls %d; process log:\n%s", len(dead), len(api.Calls()), h.logs.String())
	}
	d := dead[0]
	if d.TriggerID != "dl" || d.Subject != "actions.trigger.inbox.act" || d.Reason == "" {
		t.Errorf("dead letter %+v", d)
	}
	if n := len(api.Calls()); n != 2 {
		t.Errorf("API got %d calls, want 2 (one per delivery)", n)
	}
	var deadEvent *events.LogEvent
	for _, l := range h.logEvents(1, 5*time.Second) {
		if l.Event == events.EventDeadLettered {
			deadEvent = &l
		}
	}
	if deadEvent == nil || deadEvent.TriggerID != "dl" || deadEvent.Level != events.LevelError {
		t.Errorf("dead-letter log event %+v", deadEvent)
	}
	waitDrained(t, h)

	// Ops fix the fault and replay.
	if _, err := Setup(ctx, h.js, h.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := ReplayDeadLetter(ctx, h.js, h.cfg, d.Seq); err != nil {
		t.Fatal(err)
	}
	if r := h.result("dl", 10*time.Second); r.Status != events.StatusSucceeded {
		t.Errorf("replayed trigger: %+v", r)
	}
	if left, _ := ListDeadLetters(ctx, h.js, h.cfg); len(left) != 0 {
		t.Errorf("%d dead letters left after the replay", len(left))
	}
}
