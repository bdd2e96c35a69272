package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"customactions/consumer"
)

// TestUIOperations (issue 18): on the Authentication page, "Used by"
// shows where a token was used and "Refresh" drops an HTTP token's
// fetched token (the next call fetches a new one); the Dead letters page
// lists dead letters, re-runs one as a test run and replays one; the
// result panel of a logged trigger offers "Re-run as test" only for a
// dead letter, and says why otherwise. The CLI's tokens forget and usage
// do the same.
func TestUIOperations(t *testing.T) {
	const password = "ui-admin-password-ops"
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0", "ACTIONS_ADMIN_PASSWORD", password)
	browser := newBrowser(t)
	a := startService(t, env)

	var fetches atomic.Int64
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"access_token":"ops-token-%04d","expires_in":3600}`, fetches.Add(1))
	}))
	t.Cleanup(authSrv.Close)
	var mu sync.Mutex
	var calls []string // the Idempotency-Key (trigger id) of each call
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		w.WriteHeader(200)
	}))
	t.Cleanup(api.Close)

	tok := writeFile(t, "shop.json", `{"id":"shop","name":"Shop","type":"http","request":{"method":"POST","url":"`+authSrv.URL+`"},"token_path":"access_token"}`)
	if out, errOut, err := cli(t, env, "tokens", "save", "-f", tok); err != nil {
		t.Fatalf("tokens save: %s %s %v", out, errOut, err)
	}
	trigger := func(id string) {
		t.Helper()
		if out, errOut, err := cli(t, env, "trigger", "-id", id, "-action", "create-order", "-token", "shop", "-url", api.URL+"/orders"); err != nil {
			t.Fatalf("trigger %s: %s %s %v", id, out, errOut, err)
		}
	}
	trigger("first")
	fetchesBefore := fetches.Load()

	b := &page{t: t, ctx: browser}
	b.login(a, password)
	row := `#tokens-table tr[data-id="shop"]`
	b.do("Used by", chromedp.WaitVisible(row+` button.used-by`), chromedp.Click(row+` button.used-by`), chromedp.WaitVisible("#usage-panel"))
	b.poll(`document.querySelector('#usage-table tr[data-trigger="first"]') !== null`)
	if s := b.text("#usage-summary"); !strings.Contains(s, "create-order (") {
		t.Errorf("usage summary %q: want the action named", s)
	}
	if !b.eval(`document.querySelector('#tokens-table tr[data-id="shop"] td.secret').textContent.startsWith('****')`) {
		t.Error("the row shows no fetched token before Refresh")
	}
	b.do("Refresh", chromedp.Click(row+` button.refresh`))
	b.poll(`document.querySelector('#tokens-status').textContent.includes('dropped')`)
	b.poll(`document.querySelector('#tokens-table tr[data-id="shop"] td.secret').textContent === ''`)
	trigger("second")
	if fetches.Load() != fetchesBefore+1 {
		t.Errorf("%d token fetches after Refresh, want 1", fetches.Load()-fetchesBefore)
	}
	out, errOut, err := cli(t, env, "tokens", "forget", "shop")
	if err != nil || !strings.Contains(out, "dropped") {
		t.Errorf("tokens forget: %q %q %v", out, errOut, err)
	}
	out, _, err = cli(t, env, "tokens", "usage", "shop")
	if err != nil || !strings.Contains(out, "second") || !strings.Contains(out, "create-order") {
		t.Errorf("tokens usage: %q %v", out, err)
	}

	// Two dead letters, as the consumer writes them (PROTOCOL.md §8).
	dead := func(id string) {
		t.Helper()
		data := `{"id":"` + id + `","action_id":"create-order","source":"inbox","token_id":"shop","request":{"method":"POST","url":"` + api.URL + `/orders"}}`
		m := &nats.Msg{Subject: "actions.dead.create-order", Data: []byte(data), Header: nats.Header{}}
		m.Header.Set(consumer.HeaderDeadReason, "result publish timed out")
		m.Header.Set(consumer.HeaderDeadSubject, "actions.trigger.inbox.create-order")
		m.Header.Set(consumer.HeaderDeadSeq, "1")
		if _, err := a.conn.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	dead("dl-one")
	dead("dl-two")
	b.do("the Dead letters page", chromedp.Click("#nav-dead"), chromedp.WaitVisible("#dead-page"),
		chromedp.WaitVisible(`#dead-table tr[data-trigger="dl-one"]`))
	b.do("re-run dl-one as a test", chromedp.Click(`#dead-table tr[data-trigger="dl-one"] button.rerun`))
	b.poll(`document.querySelector('#dead-status').textContent.startsWith('test run rerun_')`)
	b.screenshot("dead-letters")
	b.poll(`document.querySelector('#dead-table tr[data-trigger="dl-one"]') !== null`)
	b.do("replay dl-one", chromedp.Click(`#dead-table tr[data-trigger="dl-one"] button.replay`))
	b.poll(`document.querySelector('#dead-table tr[data-trigger="dl-one"]') === null`)
	b.poll(`document.querySelector('#dead-status').textContent.startsWith('replayed')`)

	// The result panel: a trigger that finished can be re-run only from
	// the copies kept with ACTIONS_KEEP_TRIGGERS (off here: the panel says
	// so), a dead letter always.
	// The search reloads the table (more than once: change and submit),
	// so the row is clicked from the page once it is there.
	b.do("search the first trigger", chromedp.Click("#nav-logs"), chromedp.WaitVisible("#logs-page"),
		chromedp.SendKeys("#f-trigger", "first"), chromedp.Click("#f-search"))
	b.poll(`(() => { const r = document.querySelector('#logs-table tr[data-trigger="first"]'); if (r) r.click(); return !!r; })()`)
	b.poll(`document.querySelector('#rp-trigger').textContent === 'first'`)
	b.poll(`!document.querySelector('#rp-rerun-hint').hidden`)
	b.do("re-run a finished trigger without copies", chromedp.Click("#rp-rerun"))
	b.poll(`document.querySelector('#rp-rerun-status').textContent.includes('ACTIONS_KEEP_TRIGGERS')`)
	b.do("the panel of dl-two", chromedp.Evaluate[chromedp.Void](`showResult('create-order', 'dl-two')`))
	b.poll(`!document.querySelector('#rp-rerun').hidden`)
	b.do("re-run dl-two", chromedp.Click("#rp-rerun"))
	b.poll(`document.querySelector('#rp-rerun-status').textContent.startsWith('test run rerun_')`)

	count := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		k := 0
		for _, c := range calls {
			if strings.HasPrefix(c, prefix) {
				k++
			}
		}
		return k
	}
	deadline := time.Now().Add(20 * time.Second)
	for (count("rerun_") < 2 || count("dl-one") < 1) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if count("rerun_") != 2 || count("dl-one") != 1 || count("dl-two") != 0 {
		mu.Lock()
		t.Errorf("calls %q: want two test runs (rerun_...), dl-one replayed once, dl-two not replayed", calls)
		mu.Unlock()
	}
}
