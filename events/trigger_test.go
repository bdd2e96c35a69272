package events

import (
	"encoding/json"
	"errors"
	"math"
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

func TestDecodeEndUser(t *testing.T) {
	s := NewSubjects("")
	base := `{"id":"i","action_id":"a","source":"bot","request":{"method":"GET","url":"https://x.example"}`
	tests := []struct{ body, wantUser, wantErr string }{
		{base + `}`, "", ""},
		{base + `,"end_user":{"id":"contact_123"}}`, "contact_123", ""},
		{base + `,"end_user":null}`, "", ""},
		{base + `,"end_user":{}}`, "", "missing field end_user.id"},
		{base + `,"end_user":{"id":""}}`, "", "missing field end_user.id"},
		{base + `,"end_user":{"id":"a.b"}}`, "", `end_user.id "a.b" must match`},
		{base + `,"end_user":{"id":"` + strings.Repeat("u", 129) + `"}}`, "", "end_user.id"},
		{base + `,"end_user":"contact"}`, "", "not a valid trigger"},
	}
	for _, tc := range tests {
		tr, err := Decode(s, "actions.trigger.bot.a", []byte(tc.body), Limits{})
		if tc.wantErr == "" {
			if err != nil || tr.EndUserID() != tc.wantUser {
				t.Errorf("%s: user %q err %v, want %q", tc.body, tr.EndUserID(), err, tc.wantUser)
			}
			continue
		}
		var inv *InvalidError
		if !errors.As(err, &inv) || !strings.Contains(inv.Message, tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.body, err, tc.wantErr)
		}
		if tr.EndUser != nil && !ValidID(tr.EndUser.ID) {
			t.Errorf("%s: rejection keeps an invalid end user %q", tc.body, tr.EndUser.ID)
		}
	}
}

// FuzzDecode checks that decoding never panics, that every error is an
// *InvalidError with a trigger that a rejection can be published for, and
// that an accepted trigger keeps the contract's invariants. Its seed corpus
// runs as an ordinary test.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"id":"t","action_id":"a","source":"inbox","request":{"method":"GET","url":"https://x.example/p"}}`,
		`{"id":"t","action_id":"a","source":"inbox","token_id":"k","request":{"method":"POST","url":"http://h:1/","headers":{"A":"b"},"body":"x","timeout_ms":5},"context":{"c":[1]}}`,
		`{"id":"","action_id":"a"}`, `[]`, `null`, `{"id":1}`, `{"id":"t","action_id":"a","source":"inbox","request":{"method":"G T","url":"x"}}`,
		`{"id":"t","action_id":"a","source":"inbox","request":{"method":"GET","url":"https://x"},"context":"str"}`,
	}
	for _, n := range []string{"1", "60000", "60001", "-0", "1e3", "1.5", "9223372036854775807", "18446744073709", "9223372036854776", "1e400"} {
		seeds = append(seeds, string(triggerWith(`"t"`, `"timeout_ms":`+n, "")))
	}
	seeds = append(seeds, string(triggerWith(`"\ud800"`, "", "")), string(triggerWith("\"\xff\"", "", "")),
		string(triggerWith(`"t"`, "", `"context":`+nest("objects", MaxDepth-1, true))),
		string(triggerWith(`"t"`, "", `"x":`+nest("arrays", 100, false))))
	for _, s := range seeds {
		f.Add("actions.trigger.inbox.a", []byte(s))
	}
	for _, subject := range []string{"actions.trigger.bot.other", "nope", "actions.trigger.inbox.a.b", "actions.trigger.inbox", "actions.trigger.inbox.*", "actions.trigger.email.a"} {
		f.Add(subject, []byte(seeds[0]))
	}
	s := NewSubjects("")
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		tr, err := Decode(s, subject, data, Limits{MaxTriggerBytes: 4096})
		if tr == nil {
			t.Fatal("Decode returned no trigger")
		}
		if err != nil {
			var inv *InvalidError
			switch {
			case !errors.As(err, &inv) || inv.Message == "":
				t.Fatalf("error %v is not an *InvalidError with a message", err)
			case tr.ActionID != "" && !ValidID(tr.ActionID), tr.Source != "" && !ValidSource(tr.Source):
				t.Fatalf("rejected trigger names action %q, source %q", tr.ActionID, tr.Source)
			case tr.ID != "" && !ValidTriggerID(tr.ID), tr.TokenID != "" && !ValidID(tr.TokenID):
				t.Fatalf("rejected trigger names id %q, token %q", tr.ID, tr.TokenID)
			case len(tr.Context) > 0 && tr.Context[0] != '{':
				t.Fatalf("rejected trigger carries context %q", tr.Context)
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
		case tr.Request.Timeout() < 0 || tr.Request.Timeout() > 60*time.Second:
			t.Fatalf("accepted timeout_ms %d", tr.Request.TimeoutMS)
		case !ValidTriggerID(tr.ID):
			t.Fatalf("accepted id %q", tr.ID)
		}
		again, _ := json.Marshal(tr)
		if _, err := Decode(s, subject, again, Limits{MaxTriggerBytes: 1 << 20}); err != nil {
			t.Fatalf("a re-encoded accepted trigger is refused: %v", err)
		}
	})
}

// TestDecodeTimeoutRange: timeout_ms is compared with the cap before it
// becomes a Duration, so no value wraps past the check (issue 13:
// 9223372036854775807 and 18446744073709 wrapped to a negative Duration and
// 9223372036854776 was accepted), and both decoding paths agree on every
// spelling of a number.
func TestDecodeTimeoutRange(t *testing.T) {
	const capMsg = "is more than the maximum of 60000"
	const wholeMsg = "request.timeout_ms must be a whole number of milliseconds from 0 to 60000"
	tests := []struct {
		value   string
		want    time.Duration
		wantErr string
	}{
		{"9223372036854775807", 0, capMsg},
		{"18446744073709", 0, capMsg},
		{"9223372036854776", 0, capMsg},
		{"9223372036855", 0, capMsg},
		{"60001", 0, capMsg},
		{"60000", time.Minute, ""},
		{"1", time.Millisecond, ""},
		{"0", 0, ""},
		{"-0", 0, ""},
		{"-1", 0, "must not be negative"},
		{"-9223372036854775808", 0, "must not be negative"},
		{"9223372036854775808", 0, wholeMsg + ", got number 9223372036854775808"},
		{"99999999999999999999999999999999999999999999999999", 0, wholeMsg + ", got number " + strings.Repeat("9", 33) + "..."},
		{"1e3", 0, wholeMsg + ", got number 1e3"},
		{"1E+3", 0, wholeMsg},
		{"1.5", 0, wholeMsg},
		{"1000.0", 0, wholeMsg},
		{"-0.0", 0, wholeMsg},
		{"1e400", 0, wholeMsg},
		{`"1000"`, 0, wholeMsg + ", got string"},
		{"true", 0, wholeMsg},
	}
	for _, tc := range tests {
		data := triggerWith(`"t"`, `"timeout_ms":`+tc.value, "")
		for path, in := range map[string][]byte{"fast": data, "slow": slowPath(data)} {
			t.Run(tc.value+"/"+path, func(t *testing.T) {
				tr, err := Decode(NewSubjects(""), "actions.trigger.inbox.a", in, Limits{MaxTimeout: time.Minute})
				if tc.wantErr == "" {
					if err != nil || tr.Request.Timeout() != tc.want {
						t.Errorf("err = %v, timeout %v, want %v", err, tr.Request.Timeout(), tc.want)
					}
					return
				}
				var inv *InvalidError
				if !errors.As(err, &inv) || !strings.Contains(inv.Message, tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
			})
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	tests := []struct {
		ms   int64
		want time.Duration
	}{
		{0, 0}, {-1, 0}, {math.MinInt64, 0}, {1, time.Millisecond}, {1500, 1500 * time.Millisecond},
		{math.MaxInt64 / 1_000_000, time.Duration(math.MaxInt64/1_000_000) * time.Millisecond},
		{math.MaxInt64/1_000_000 + 1, math.MaxInt64}, {18446744073709, math.MaxInt64}, {math.MaxInt64, math.MaxInt64},
	}
	for _, tc := range tests {
		r := Request{TimeoutMS: tc.ms}
		if got := r.Timeout(); got != tc.want {
			t.Errorf("Timeout() with timeout_ms %d = %v, want %v", tc.ms, got, tc.want)
		}
	}
}
