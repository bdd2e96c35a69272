package oauthtest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"customactions/internal/oauthtest"
)

// revoke posts token to the revocation endpoint with Basic client
// authentication and returns the status.
func revoke(t *testing.T, f flow, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.RevokeURL,
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(f.srv.ClientID), url.QueryEscape(f.srv.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRevokeRefreshToken(t *testing.T) {
	f := newFlow(t, oauthtest.Options{})
	ctx := t.Context()
	code, verifier := f.code(t, "bob", "bob-password")
	tok, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if status := revoke(t, f, tok.RefreshToken); status != http.StatusOK {
		t.Fatalf("revoke: status %d", status)
	}
	_, err = f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if got := oauthError(t, err); got != "invalid_grant" {
		t.Errorf("refresh after revocation: error %q, want invalid_grant", got)
	}
	if _, ok := f.srv.Subject(ctx, tok.AccessToken); ok {
		t.Error("access token of the revoked grant still valid")
	}
	if got := [...]int64{f.srv.Revocations(), f.srv.FamiliesRevoked(), f.srv.ReusedRefreshTokens()}; got != [...]int64{1, 0, 0} {
		t.Errorf("Revocations, FamiliesRevoked, ReusedRefreshTokens = %v, want [1 0 0]", got)
	}
}

// A client that does not authenticate is refused and not counted. fosite
// answers a request without client_id 400 invalid_request, a wrong secret
// 401 invalid_client.
func TestRevokeNeedsClient(t *testing.T) {
	tests := []struct {
		name       string
		user, pass string
		want       int
	}{
		{name: "no client", want: http.StatusBadRequest},
		{name: "wrong secret", user: "client-1", pass: "wrong", want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, oauthtest.Options{})
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.RevokeURL,
				strings.NewReader(url.Values{"token": {f.srv.MintRefreshToken(t)}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want || f.srv.Revocations() != 0 {
				t.Errorf("status %d, Revocations %d, want %d and 0", resp.StatusCode, f.srv.Revocations(), tt.want)
			}
		})
	}
}
