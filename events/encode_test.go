package events

import (
	"encoding/json"
	"testing"
)

// TestAppendJSONMatchesEncodingJSON: the hand-written encoders write the
// bytes encoding/json writes.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	results := []*Result{
		sampleResult(),
		{TriggerID: "seq-1", ActionID: "a", Source: "bot", Status: StatusRejected, Error: &Error{Code: CodeInvalidTrigger, Message: "bad <json> & \"quotes\"\n\u2028"}},
		{TriggerID: "t", ActionID: "a", Source: "test", Status: StatusSucceeded, Response: &Response{Headers: nil, Body: "\xff\x00binary\x7f"},
			Context: json.RawMessage("{ \"spaced\" : [1, 2] }")},
		{TriggerID: "t", ActionID: "a", Source: "bot", Status: StatusFailed, HTTPStatus: 429, RetryAfterMS: 2000,
			Error: &Error{Code: CodeRateLimited, Message: "wait"}, Context: json.RawMessage(`{"c":1}`)},
		{TriggerID: "t", ActionID: "a", Source: "bot", Status: StatusAuthorizationRequired, EndUserID: "contact_1",
			AuthorizationURL: "https://actions.example.com/connect/ABC&<x>", Error: &Error{Code: CodeAuthorizationRequired, Message: "connect"}},
	}
	for _, r := range results {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("result:\n got  %s\n want %s", got, want)
		}
	}
	logs := []*LogEvent{
		sampleLog(),
		{Time: "t", Level: LevelWarn, Event: EventTriggerRejected, ActionID: "a", Message: "m", Details: map[string]any{"code": "x", "n": uint64(3), "ok": true, "nil": nil, "f": 1.5, "list": []int{1}}},
		{Time: "t", Level: LevelInfo, Event: EventBreakerClosed, ActionID: "a", Message: "<b>"},
	}
	for _, e := range logs {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("log event:\n got  %s\n want %s", got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<>&", "\x00\x1f\"\\", "\u2028\u2029", "\xff\xfe", "é漢字🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkAppendResult(b *testing.B) {
	r := sampleResult()
	b.ReportAllocs()
	for b.Loop() {
		_ = r.AppendJSON(make([]byte, 0, 512))
	}
}

func BenchmarkAppendLog(b *testing.B) {
	e := sampleLog()
	b.ReportAllocs()
	for b.Loop() {
		_ = e.AppendJSON(make([]byte, 0, 512))
	}
}
