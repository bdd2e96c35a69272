package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"customactions/internal/webui"
)

// startTestHTTP runs startHTTP on a loopback port until the test ends.
func startTestHTTP(t *testing.T, extra func(*http.ServeMux), opts ...httpOption) string {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ready := func(context.Context) error { return nil }
	addr, err := startHTTP(ctx, "127.0.0.1:0", prometheus.NewRegistry(), ready, slog.New(slog.DiscardHandler), extra, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func status(t *testing.T, c *http.Client, method, url, body string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestPprofIsOffByDefault(t *testing.T) {
	for name, opts := range map[string][]httpOption{"no option": nil, "disabled": {withPprof(false, nil)}} {
		base := startTestHTTP(t, nil, opts...)
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=2", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1"} {
			if code, _ := status(t, http.DefaultClient, "GET", base+p, ""); code != http.StatusNotFound {
				t.Errorf("%s: GET %s = %d, want 404", name, p, code)
			}
		}
		if code, h := status(t, http.DefaultClient, "GET", base+"/healthz", ""); code != 200 || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: /healthz = %d, headers %v", name, code, h)
		}
	}
}

func TestPprofWithoutTheUI(t *testing.T) {
	base := startTestHTTP(t, nil, withPprof(true, nil))
	if code, _ := status(t, http.DefaultClient, "GET", base+"/debug/pprof/heap?debug=1", ""); code != 200 {
		t.Errorf("pprof enabled without the UI: %d, want 200", code)
	}
}

func TestPprofNeedsTheUILogin(t *testing.T) {
	ui, err := webui.New(webui.Config{Password: "pprof-test-password"}, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := startTestHTTP(t, ui.Register, withPprof(true, ui))
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	paths := []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=2", "/debug/pprof/cmdline"}
	for _, p := range paths {
		if code, h := status(t, c, "GET", base+p, ""); code != http.StatusUnauthorized || h.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s before login = %d (CSP %q), want 401", p, code, h.Get("Content-Security-Policy"))
		}
	}
	// The CPU profile and trace run for seconds: only check they are refused.
	for _, p := range []string{"/debug/pprof/profile?seconds=30", "/debug/pprof/trace?seconds=30"} {
		if code, _ := status(t, c, "GET", base+p, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s before login = %d, want 401", p, code)
		}
	}
	// Metrics and health stay open (scrapers and probes have no session).
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _ := status(t, c, "GET", base+p, ""); code != 200 {
			t.Errorf("GET %s = %d, want 200", p, code)
		}
	}
	if code, _ := status(t, c, "POST", base+"/ui/login", `{"password":"pprof-test-password"}`); code != 200 {
		t.Fatalf("login: %d", code)
	}
	if code, _ := status(t, c, "GET", base+"/debug/pprof/heap?debug=1", ""); code != 200 {
		t.Errorf("pprof after login = %d, want 200", code)
	}
	if code, _ := status(t, c, "POST", base+"/ui/logout", ""); code != 200 {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := status(t, c, "GET", base+"/debug/pprof/heap?debug=1", ""); code != http.StatusUnauthorized {
		t.Errorf("pprof after logout = %d, want 401", code)
	}
}
