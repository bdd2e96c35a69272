package consumer

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"customactions/auth"
	"customactions/events"
	"customactions/internal/netguard"
)

func TestPrivateAddressesAreRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	as := newAuthServer(t)
	h.putToken(as.token())
	guarded := netguard.Policy{}.Client(4)
	h.start(WithHTTPClient(guarded),
		WithTokens(auth.NewStore(h.res.Tokens, nil), auth.NewManager(h.res.Fetched, auth.NewFetcher(auth.WithHTTPClient(guarded)))))
	tests := []struct{ id, url, token, wantMsg string }{
		{"loopback", api.URL + "/x", "", "loopback, private or link-local"},
		{"metadata", "http://169.254.169.254/latest/meta-data/", "", "169.254.169.254"},
		{"localhost-name", "http://localhost:1/", "", "loopback"},
		{"auth-endpoint", "https://api.example.invalid/x", "shop", "the auth endpoint of token shop"},
	}
	for _, tc := range tests {
		h.trigger(&events.Trigger{ID: tc.id, ActionID: "a", Source: "inbox", TokenID: tc.token, Request: events.Request{Method: "GET", URL: tc.url}})
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			r := h.result(tc.id, 10*time.Second)
			if r.Status != events.StatusRejected || r.Error == nil || r.Error.Code != events.CodeURLNotAllowed || r.Attempts != 0 {
				t.Fatalf("result %+v %+v, want rejected/url_not_allowed", r, r.Error)
			}
			if !strings.Contains(r.Error.Message, tc.wantMsg) {
				t.Errorf("message %q lacks %q", r.Error.Message, tc.wantMsg)
			}
		})
	}
	if len(api.Calls()) != 0 || as.authCalls.Load() != 0 {
		t.Errorf("a refused address was reached: %d API calls, %d auth calls", len(api.Calls()), as.authCalls.Load())
	}
}
