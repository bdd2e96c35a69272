package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestOAuth2SecretsNeverShown: a token endpoint that echoes what it got,
// in its answers and its errors, and an action that echoes the access
// token: no client secret, refresh token or access token shows in an error,
// a health's last error, a view or what Credential.Redact leaves.
func TestOAuth2SecretsNeverShown(t *testing.T) {
	const clientSecret, pasted = "client-secret-abcdef123456", "pasted-refresh-token-0123456789"
	var mode atomic.Value
	mode.Store("ok")
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		echo := fmt.Sprintf("%s %s", body, r.Header.Get("Authorization"))
		switch mode.Load() {
		case "500":
			w.WriteHeader(500)
			json.NewEncoder(w).Encode(map[string]string{"error": "server_error", "error_description": "got " + echo, "debug": echo})
		case "400":
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "bad " + echo})
		default:
			json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("access-token-%d-abcdefghij", n.Add(1)),
				"refresh_token": fmt.Sprintf("rotated-refresh-%d-abcdefghij", n.Load()), "expires_in": 3600})
		}
	}))
	t.Cleanup(srv.Close)
	e := newOAuthEnv(t)
	r := e.replica("r1", nil)
	tok := &Token{ID: "crm", Type: TypeOAuth2, OAuth2: &OAuth2{Grant: GrantRefreshToken, TokenURL: srv.URL + "/token",
		ClientID: "cid", ClientSecret: clientSecret, RefreshToken: pasted}}
	if _, err := e.save(r, tok); err != nil {
		t.Fatal(err)
	}
	c := r.mgr.cachedOAuth("crm")
	secrets := []string{clientSecret, pasted, c.Access.Reveal(), c.Refresh.Reveal()}
	check := func(what, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s shows a secret: %s", what, s)
			}
		}
	}
	stored, _ := e.tokens.Get(t.Context(), "crm")
	view, _, _ := r.mgr.OAuth2View(t.Context(), "crm")
	data, _ := json.Marshal(map[string]any{"token": stored, "view": view})
	check("the token and its view", string(data))
	raw, _ := e.fetched.Get(t.Context(), oauth2KeyPrefix+"crm")
	check("the sealed record", string(raw.Value()))

	var echoed string
	_, err := r.auth.Do(t.Context(), Ref{TokenID: "crm"}, func(ctx context.Context, cred Credential) int {
		h := http.Header{}
		cred.Sign(h)
		echoed = cred.Redact("you sent " + h.Get("Authorization") + " and " + c.Refresh.Reveal() + " and " + clientSecret)
		return 200
	})
	if err != nil {
		t.Fatal(err)
	}
	check("an echo redacted by the credential", echoed)

	for _, m := range []string{"500", "400"} {
		mode.Store(m)
		_, _, err := r.mgr.oauthObtain(t.Context(), workspace(stored), r.mgr.cachedOAuth("crm").Gen)
		if err == nil {
			t.Fatalf("%s: no error", m)
		}
		check("the error of a "+m, err.Error())
		var rerr *AuthError
		if errors.As(err, &rerr) {
			check("the body of a "+m, rerr.Body)
		}
		h := r.mgr.cachedOAuth("crm").Health
		check("the last error after a "+m, h.LastError)
		if want := map[string]string{"500": HealthDegraded, "400": HealthReauthorizationRequired}[m]; h.Status != want {
			t.Errorf("after a %s: status %s, want %s", m, h.Status, want)
		}
	}
}
