package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startService runs the service in-process on an embedded server with a
// random port and points the CLI at it through NATS_URL in env.
func startService(t *testing.T, env *testEnv) *app {
	t.Helper()
	env.set("ACTIONS_DATA_DIR", t.TempDir())
	env.set("ACTIONS_NATS_LISTEN", "127.0.0.1:0")
	env.set("ACTIONS_ALLOW_PRIVATE_NETWORKS", "true")
	env.set("NATS_URL", "")
	a := runServe(t, env, "service")
	env.set("NATS_URL", a.conn.srv.ClientURL())
	return a
}

// runServe runs serve with the settings of env until the test ends, and
// returns once the service is up.
func runServe(t *testing.T, env *testEnv, what string) *app {
	t.Helper()
	s, err := loadSettings(env.getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *app, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, s, slog.New(slog.DiscardHandler), func(a *app) { ready <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve (%s): %v", what, err)
		}
	})
	select {
	case a := <-ready:
		return a
	case err := <-done:
		t.Fatalf("%s did not start: %v", what, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start", what)
	}
	return nil
}

// cli runs one command as a user would and returns its output.
func cli(t *testing.T, env *testEnv, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, args, env.getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIAgainstRunningService(t *testing.T) {
	t.Parallel()
	env := newEnv()
	startService(t, env)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer cli-secret-value-5678" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(201)
		fmt.Fprint(w, `{"created":true}`)
	}))
	t.Cleanup(api.Close)
	secret := "cli-secret-value-5678"
	tokenFile := writeFile(t, "crm.json", `{"id":"crm","name":"CRM","description":"read-only key","type":"text","value":"`+secret+`","prefix":"Bearer ","header":"Authorization"}`)

	out, _, err := cli(t, env, "tokens", "test", "-f", tokenFile)
	if err != nil || !strings.Contains(out, "test passed") || !strings.Contains(out, "****5678") {
		t.Errorf("tokens test: %q %v", out, err)
	}
	out, _, err = cli(t, env, "tokens", "save", "-f", tokenFile)
	if err != nil || !strings.Contains(out, `"value": "****5678"`) {
		t.Errorf("tokens save: %q %v", out, err)
	}
	out, _, err = cli(t, env, "tokens", "list")
	if err != nil || !strings.Contains(out, "ID") || !strings.Contains(out, "crm") || !strings.Contains(out, "****5678") {
		t.Errorf("tokens list: %q %v", out, err)
	}
	out, _, err = cli(t, env, "tokens", "get", "crm", "-o", "json")
	if err != nil || !strings.Contains(out, `"id": "crm"`) || !strings.Contains(out, `"header": "Authorization"`) {
		t.Errorf("tokens get: %q %v", out, err)
	}
	bad := writeFile(t, "bad.json", `{"id":"bad","type":"text"}`)
	_, errOut, err := cli(t, env, "tokens", "save", "-f", bad)
	var code exitCode
	if !errors.As(err, &code) || code == 0 || !strings.Contains(errOut, "invalid_token") || !strings.Contains(errOut, "a text token needs a value") {
		t.Errorf("bad save: %q %v", errOut, err)
	}

	out, errOut, err = cli(t, env, "trigger", "-action", "create-order", "-token", "crm", "-method", "POST",
		"-url", api.URL+"/orders", "-H", "Content-Type: application/json", "-body", `{"sku":"A"}`, "-context", `{"conversation_id":"9"}`)
	if err != nil || !strings.Contains(out, `"status": "succeeded"`) || !strings.Contains(out, `"http_status": 201`) ||
		!strings.Contains(out, `"conversation_id": "9"`) {
		t.Errorf("trigger: %q %q %v", out, errOut, err)
	}
	out, _, err = cli(t, env, "trigger", "-action", "create-order", "-url", "ftp://nope")
	if !errors.As(err, &code) || code != 3 || !strings.Contains(out, `"status": "rejected"`) {
		t.Errorf("rejected trigger: %q %v", out, err)
	}
	out, _, err = cli(t, env, "logs", "create-order")
	if err != nil || !strings.Contains(out, "action_succeeded") || !strings.Contains(out, "trigger_rejected") {
		t.Errorf("logs: %q %v", out, err)
	}
	out, _, err = cli(t, env, "breakers", "list")
	if err != nil || !strings.Contains(out, "ACTION") {
		t.Errorf("breakers list: %q %v", out, err)
	}
	out, _, err = cli(t, env, "tokens", "delete", "crm")
	if err != nil || !strings.Contains(out, "token crm deleted") {
		t.Errorf("tokens delete: %q %v", out, err)
	}
	_, errOut, err = cli(t, env, "tokens", "get", "crm")
	if !errors.As(err, &code) || !strings.Contains(errOut, "not_found") {
		t.Errorf("get after delete: %q %v", errOut, err)
	}
}

func TestLogsFollow(t *testing.T) {
	t.Parallel()
	env := newEnv()
	startService(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	w := &lockedWriter{buf: &out}
	go func() { done <- run(ctx, []string{"logs", "-f", "act"}, env.getenv, w, &bytes.Buffer{}) }()
	time.Sleep(200 * time.Millisecond)
	_, _, _ = cli(t, env, "trigger", "-action", "act", "-url", "http://127.0.0.1:1/x", "-wait", "10s")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.String(), "action_failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(w.String(), "action_failed") {
		t.Errorf("logs -f printed %q", w.String())
	}
}

func TestSettingsAndUsage(t *testing.T) {
	t.Parallel()
	env := newEnv()
	out, _, err := cli(t, env, "settings")
	if err != nil || !strings.Contains(out, "ACTIONS_WORKERS") || !strings.Contains(out, "NATS_URL") {
		t.Errorf("settings: %q %v", out, err)
	}
	if _, _, err := cli(t, env, "frobnicate"); err == nil {
		t.Error("an unknown command succeeded")
	}
}

func TestMetricsAndHealth(t *testing.T) {
	t.Parallel()
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0")
	a := startService(t, env)
	if a.httpAddr == "" {
		t.Fatal("no http address")
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(api.Close)
	if _, _, err := cli(t, env, "trigger", "-action", "metered", "-url", api.URL); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + a.httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "alive") {
		t.Errorf("/healthz %d %s", code, body)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Errorf("/readyz %d %s", code, body)
	}
	_, body := get("/metrics")
	for _, want := range []string{
		`actions_triggers_total{action="metered",source="inbox",status="succeeded"} 1`,
		`actions_call_duration_seconds_count{action="metered"} 1`,
		`actions_call_attempts_total{action="metered"} 1`,
		`actions_in_flight 0`,
		`actions_consumer_pending 0`,
		`actions_consumer_ack_pending`,
		`actions_breakers{state="open"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestGCPercentSetting(t *testing.T) {
	tests := []struct {
		name, value string
		wantErr     string
	}{
		{"default", "", ""},
		{"larger", "400", ""},
		{"too small", "10", "ACTIONS_GC_PERCENT is 10; use 50 or more"},
		{"off", "-1", "ACTIONS_GC_PERCENT is -1; use 50 or more"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := loadSettings(newEnv("ACTIONS_GC_PERCENT", tc.value).getenv)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("loadSettings: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("loadSettings error = %v, want it to say %q", err, tc.wantErr)
			case tc.wantErr == "" && tc.value == "" && s.GCPercent != 200:
				t.Errorf("default GCPercent = %d, want 200", s.GCPercent)
			}
		})
	}
}
