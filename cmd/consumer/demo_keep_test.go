package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoKeepServesTheUI runs `demo -keep` and opens the web UI at the
// URL it prints, with the password it prints.
func TestDemoKeepServesTheUI(t *testing.T) {
	out := &lockedWriter{buf: &bytes.Buffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "-keep"}, newEnv().getenv, out, io.Discard) }()

	printed := regexp.MustCompile(`the web admin UI: (http://127\.0\.0\.1:\d+/ui/) \(password: (\S+)\)`)
	var m []string
	for m == nil {
		select {
		case err := <-done:
			t.Fatalf("demo -keep ended: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("demo -keep printed no UI address:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
			m = printed.FindStringSubmatch(out.String())
		}
	}
	url, password := m[1], m[2]
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `id="login-form"`) {
		t.Errorf("GET %s: %d, login page %v", url, resp.StatusCode, strings.Contains(string(page), `id="login-form"`))
	}
	for _, tc := range []struct {
		password string
		want     int
	}{{"wrong", 401}, {password, 200}} {
		resp, err := http.Post(url+"login", "application/json", strings.NewReader(`{"password":"`+tc.password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("login with %q: %d, want %d", tc.password, resp.StatusCode, tc.want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo -keep after Ctrl-C: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo -keep did not stop")
	}
}

func TestUIURL(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:4321", "http://127.0.0.1:4321/ui/"},
		{"[::]:9090", "http://localhost:9090/ui/"},
		{"0.0.0.0:9090", "http://localhost:9090/ui/"},
		{"[::1]:9090", "http://[::1]:9090/ui/"},
	} {
		if got := uiURL(tc.addr); got != tc.want {
			t.Errorf("uiURL(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
