package events

import (
	"encoding/json"
	"testing"
)

func sampleResult() *Result {
	return &Result{TriggerID: "trg_01JD6Y3K2Q-12345", ActionID: "bench-action", Source: "inbox", TokenID: "bench-text",
		Status: StatusSucceeded, HTTPStatus: 200, Attempts: 1,
		Response:  &Response{Headers: map[string]string{"Content-Type": "application/json", "Date": "Tue, 24 Nov 2026 18:00:00 GMT", "Content-Length": "23"}, Body: `{"ok":true,"n":12345}`},
		StartedAt: "2026-11-24T12:00:00.000Z", FinishedAt: "2026-11-24T12:00:00.120Z", DurationMS: 120,
		Context: json.RawMessage(`{"sent_ns":1764000000000000000}`)}
}

func sampleLog() *LogEvent {
	return &LogEvent{Time: "2026-11-24T12:00:00.050Z", Level: LevelInfo, Event: EventActionSucceeded, ActionID: "bench-action",
		TriggerID: "trg_01JD6Y3K2Q-12345", TokenID: "bench-text", Message: "POST http://127.0.0.1:18080/v1/echo answered 200",
		Details: map[string]any{"method": "POST", "url": "http://127.0.0.1:18080/v1/echo", "http_status": 200, "attempts": 1, "duration_ms": int64(0)},
		Context: json.RawMessage(`{"sent_ns":1764000000000000000}`)}
}

func BenchmarkMarshalResult(b *testing.B) {
	r := sampleResult()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalLog(b *testing.B) {
	e := sampleLog()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}
