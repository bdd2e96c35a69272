package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the README's first command and checks it shows the service
// doing its job.
func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, []string{"demo"}, newEnv().getenv, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{
		"saving HTTP token shop with a wrong client_secret is refused",
		"-> succeeded, http 201, attempts 2, token_refreshed true",
		"error invalid_trigger: missing field request.url",
		"error token_not_found",
		"-> breaker_open",
		"token_refreshed",
		"breaker_opened",
		"the auth endpoint was called 4 times",
		"saved OAuth 2.0 token helpdesk",
		"-> succeeded, http 200, attempts 2, token_refreshed true",
		"token helpdesk: status ok",
		"the OAuth 2.0 token endpoint got 2 refreshes (the save, the 401), each answered with a new refresh token: every refresh token was used once",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	for _, secret := range []string{"demo-client-secret", "crm-demo-key-1234", "demo-access-token-", demoOAuthSecret, "demo-refresh-token-", "demo-oauth-access-"} {
		if strings.Contains(s, secret) || strings.Contains(errOut.String(), secret) {
			t.Errorf("demo output shows the secret %q", secret)
		}
	}
	if t.Failed() {
		t.Log(s)
	}
}
