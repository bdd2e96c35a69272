package events

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFitIn(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	tests := []struct {
		name      string
		body      string
		headers   map[string]string
		wantCut   bool
		wantNoHdr bool
	}{
		{"small", `{"ok":true}`, map[string]string{"Content-Type": "application/json"}, false, false},
		{"plain bytes over the limit", strings.Repeat("a", 100<<10), nil, true, false},
		{"control bytes that escaping inflates 6x", strings.Repeat("\x01", 20<<10), nil, true, false},
		{"multi-byte characters cut at a boundary", strings.Repeat("é€😀", 20<<10), nil, true, false},
		{"headers too large for any body", "body", map[string]string{"X-Big": strings.Repeat("\x02", 20<<10)}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &Result{TriggerID: "t1", ActionID: "a", Source: "inbox", Status: StatusSucceeded, HTTPStatus: 200,
				Response: &Response{Body: tc.body, Headers: tc.headers}, Context: []byte(`{"conversation_id":"c1"}`)}
			if !r.FitIn(limit) {
				t.Fatal("does not fit")
			}
			enc := r.AppendJSON(nil)
			if len(enc) > limit {
				t.Errorf("encoded %d bytes, limit %d", len(enc), limit)
			}
			if r.Response.Truncated != tc.wantCut {
				t.Errorf("truncated = %v, want %v", r.Response.Truncated, tc.wantCut)
			}
			if tc.wantCut && !tc.wantNoHdr && len(enc) < limit-64 {
				t.Errorf("cut to %d bytes, far below the limit %d: the body was cut more than needed", len(enc), limit)
			}
			if tc.headers != nil && (r.Response.Headers == nil) != tc.wantNoHdr {
				t.Errorf("headers kept = %v", r.Response.Headers != nil)
			}
			if !utf8.ValidString(r.Response.Body) || !strings.HasPrefix(tc.body, r.Response.Body) {
				t.Errorf("the kept body is not a prefix at a character boundary")
			}
		})
	}
}
