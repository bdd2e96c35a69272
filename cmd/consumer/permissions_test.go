package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"customactions/internal/natstest"
)

// startWithAccounts starts an embedded JetStream server with the users and
// permissions of deploy/nats/accounts.conf, each user's password being
// "pw-<user>".
func startWithAccounts(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/nats/accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	return natstest.StartWithConfig(t, natstest.TestPasswords(string(raw)))
}

// TestPermissionViolationsFailFast: a tool run as a NATS user that lacks a
// permission says so at once, naming the subject, instead of waiting for
// an answer the server will never send.
func TestPermissionViolationsFailFast(t *testing.T) {
	t.Parallel()
	url := startWithAccounts(t)
	tests := []struct {
		name, user string
		args       []string
		want       []string
	}{
		{"producer waits for a result", "producer", []string{"trigger", "-action", "create-order", "-url", "https://api.example.com/x"},
			[]string{"the NATS user may not subscribe to actions.result.create-order", "deploy/nats", "-wait 0"}},
		{"subscriber reads logs", "subscriber", []string{"logs"},
			[]string{"the NATS user may not publish to $JS.API.STREAM.INFO.ACTIONS_LOGS", "ask for publish permission", "deploy/nats"}},
		{"subscriber follows logs", "subscriber", []string{"logs", "-f", "create-order"},
			[]string{"the NATS user may not publish to $JS.API.STREAM.INFO.ACTIONS_LOGS"}},
		{"producer lists tokens", "producer", []string{"tokens", "list"},
			[]string{"the NATS user may not publish to actions.admin.tokens.list"}},
		{"subscriber lists dead letters", "subscriber", []string{"dead", "list"},
			[]string{"the NATS user may not publish to $JS.API.STREAM.INFO.ACTIONS_DEAD"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv("NATS_URL", url, "NATS_USER", tc.user, "NATS_PASSWORD", "pw-"+tc.user)
			start := time.Now()
			out, errOut, err := cli(t, env, tc.args...)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("%v took %s", tc.args, took)
			}
			msg := errOut
			if err != nil {
				msg += err.Error()
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%v: %q %q %v, want it to say %q", tc.args, out, errOut, err, w)
				}
			}
		})
	}
}
