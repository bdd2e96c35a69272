package events

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestDecodeValid(t *testing.T) {
	s := NewSubjects("")
	data := []byte(`{"id":"trg_1","action_id":"create-order","source":"inbox","token_id":"shop-api","mode":"extra field ok",
		"request":{"method":"POST","url":"https://api.example.com/orders","headers":{"Content-Type":"application/json"},"body":"{}","timeout_ms":10000},
		"context":{"conversation_id":"123"}}`)
	tr, err := Decode(s, "actions.trigger.inbox.create-order", data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.ID != "trg_1" || tr.TokenID != "shop-api" || tr.Request.TimeoutMS != 10000 || string(tr.Context) != `{"conversation_id":"123"}` || !tr.Live() {
		t.Errorf("decoded %+v", tr)
	}
}

func TestDecodeLimits(t *testing.T) {
	s := NewSubjects("")
	headers := map[string]string{}
	for i := range 65 {
		headers[strings.Repeat("h", i+1)] = "v"
	}
	tests := []struct {
		name    string
		req     Request
		wantErr string
	}{
		{"too many headers", Request{Method: "GET", URL: "https://x.example", Headers: headers}, "65 headers, more than the maximum of 64"},
		{"headers too big", Request{Method: "GET", URL: "https://x.example", Headers: map[string]string{"X": strings.Repeat("a", 17<<10)}}, "more than the maximum of 16384"},
		{"control char", Request{Method: "GET", URL: "https://x.example", Headers: map[string]string{"X": "a\r\nInjected: 1"}}, "control character"},
		{"user info", Request{Method: "GET", URL: "https://u:p@x.example"}, "user info"},
		{"no host", Request{Method: "GET", URL: "https:///path"}, "has no host"},
		{"negative timeout", Request{Method: "GET", URL: "https://x.example", TimeoutMS: -1}, "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := json.Marshal(Trigger{ID: "i", ActionID: "a", Source: "bot", Request: tc.req})
			_, err := Decode(s, "actions.trigger.bot.a", data, Limits{MaxTimeout: time.Minute})
			var inv *InvalidError
			if !errors.As(err, &inv) || !strings.Contains(inv.Message, tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzDecode checks that decoding never panics, that every error is an
// *InvalidError, and that an accepted trigger keeps the contract's
// invariants. Its seed corpus runs as an ordinary test.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"id":"t","action_id":"a","source":"inbox","request":{"method":"GET","url":"https://x.example/p"}}`,
		`{"id":"t","action_id":"a","source":"inbox","token_id":"k","request":{"method":"POST","url":"http://h:1/","headers":{"A":"b"},"body":"x","timeout_ms":5},"context":{"c":[1]}}`,
		`{"id":"","action_id":"a"}`, `[]`, `null`, `{"id":1}`, `{"id":"t","action_id":"a","source":"inbox","request":{"method":"G T","url":"x"}}`,
		`{"id":"t","action_id":"a","source":"inbox","request":{"method":"GET","url":"https://x"},"context":"str"}`,
	}
	for _, s := range seeds {
		f.Add("actions.trigger.inbox.a", []byte(s))
	}
	f.Add("actions.trigger.bot.other", []byte(seeds[0]))
	f.Add("nope", []byte(seeds[0]))
	s := NewSubjects("")
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		tr, err := Decode(s, subject, data, Limits{MaxTriggerBytes: 4096})
		if tr == nil {
			t.Fatal("Decode returned no trigger")
		}
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || inv.Message == "" {
				t.Fatalf("error %v is not an *InvalidError with a message", err)
			}
			return
		}
		src, act, perr := s.ParseTrigger(subject)
		u, uerr := url.Parse(tr.Request.URL)
		switch {
		case perr != nil, tr.Source != src, tr.ActionID != act:
			t.Fatalf("accepted a trigger that does not match its subject %q: %+v", subject, tr)
		case tr.ID == "" || len(tr.ID) > 128 || !ValidID(tr.ActionID) || !ValidSource(tr.Source):
			t.Fatalf("accepted bad names: %+v", tr)
		case uerr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "":
			t.Fatalf("accepted a bad URL %q", tr.Request.URL)
		case tr.TokenID != "" && !ValidID(tr.TokenID):
			t.Fatalf("accepted a bad token id %q", tr.TokenID)
		}
		again, _ := json.Marshal(tr)
		if _, err := Decode(s, subject, again, Limits{MaxTriggerBytes: 1 << 20}); err != nil {
			t.Fatalf("a re-encoded accepted trigger is refused: %v", err)
		}
	})
}
