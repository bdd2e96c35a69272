package consumer

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"customactions/auth"
	"customactions/events"
)

// TestTokenHealthLogNamesTheEndUser: two end users' connections of one
// token that need reauthorization in the same millisecond are two log
// events, each naming its user (the message id of one must not
// deduplicate the other's).
func TestTokenHealthLogNamesTheEndUser(t *testing.T) {
	h := newHarness(t, Config{})
	hook := TokenHealthLog(events.NewPublisher(h.js, h.subj), slog.New(slog.DiscardHandler), time.Now)
	at := time.Now()
	for _, u := range []string{"contact_a", "contact_b"} {
		hook(auth.HealthChange{TokenID: "crm", EndUserID: u, From: auth.HealthOK, To: auth.HealthReauthorizationRequired, At: at, Reason: "invalid_grant"})
	}
	hook(auth.HealthChange{TokenID: "crm", From: auth.HealthOK, To: auth.HealthReauthorizationRequired, At: at, Reason: "invalid_grant"})
	got := map[string]bool{}
	for _, e := range h.logEvents(3, 10*time.Second) {
		user, _ := e.Details["end_user_id"].(string)
		if e.Event != events.EventTokenReauthorizationRequired || e.TokenID != "crm" || (user != "" && !strings.Contains(e.Message, "end user "+user)) {
			t.Errorf("event %+v", e)
		}
		got[user] = true
	}
	if !got["contact_a"] || !got["contact_b"] || !got[""] {
		t.Fatalf("events for end users %v, want contact_a, contact_b and the workspace connection", got)
	}
}
