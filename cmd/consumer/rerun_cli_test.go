package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRerunLoggedTrigger: with ACTIONS_KEEP_TRIGGERS a trigger that ran
// (and was acked, so it is gone from the work queue) is run again as a
// test: the same request, a new id, source test. Without copies, or for a
// trigger not kept, the command says why.
func TestRerunLoggedTrigger(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var keys, bodies []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		keys, bodies = append(keys, r.Header.Get("Idempotency-Key")), append(bodies, r.Method+" "+r.URL.RawQuery+" "+string(body))
		mu.Unlock()
	}))
	defer api.Close()
	env := newEnv("ACTIONS_KEEP_TRIGGERS", "1048576")
	startService(t, env)
	if _, errOut, err := cli(t, env, "trigger", "-id", "orig-1", "-action", "orders", "-method", "PUT", "-url", api.URL+"/o?x=1", "-body", `{"sku":"A-1"}`); err != nil {
		t.Fatalf("trigger: %v %s", err, errOut)
	}
	out, errOut, err := cli(t, env, "triggers", "rerun", "orders", "orig-1")
	if err != nil || !strings.Contains(out, "published again as test run rerun_") {
		t.Fatalf("rerun: %q %q %v", out, errOut, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(keys)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API got %d calls, want 2", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if keys[0] != "orig-1" || !strings.HasPrefix(keys[1], "rerun_") || bodies[0] != bodies[1] || bodies[0] != `PUT x=1 {"sku":"A-1"}` {
		t.Fatalf("calls: keys %q, requests %q", keys, bodies)
	}
	if _, errOut, err := cli(t, env, "triggers", "rerun", "orders", "never-ran"); err == nil || !strings.Contains(errOut, "not among the recent triggers") {
		t.Fatalf("rerun of an unknown trigger: %q %v", errOut, err)
	}
	off := newEnv()
	startService(t, off)
	if _, errOut, err := cli(t, off, "triggers", "rerun", "orders", "orig-1"); err == nil || !strings.Contains(errOut, "ACTIONS_KEEP_TRIGGERS") {
		t.Fatalf("rerun without copies: %q %v", errOut, err)
	}
}
