package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"customactions/events"
)

// login opens the UI of a and logs in.
func (p *page) login(a *app, password string) {
	p.t.Helper()
	p.do("log in",
		chromedp.Navigate("http://"+a.httpAddr+"/ui/"),
		chromedp.WaitVisible("#login-password"),
		chromedp.SendKeys("#login-password", password),
		chromedp.Click("#login-submit"),
		chromedp.WaitVisible("#tokens-page"))
}

// clear empties the input of sel.
func clear(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ''`, sel))
}

func (p *page) str(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (p *page) num(expr string) float64 {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[float64](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// TestUIFailedTestRequestShowsTheAuthResponse: a test request that the
// auth endpoint refuses shows why, with the endpoint's status, headers and
// body (it used to show nothing: the reply's error string was taken for a
// failed request without a message).
func TestUIFailedTestRequestShowsTheAuthResponse(t *testing.T) {
	const password = "ui-admin-password-3"
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0", "ACTIONS_ADMIN_PASSWORD", password)
	browser := newBrowser(t)
	a := startService(t, env)
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Auth-Trace", "trace-77")
		w.WriteHeader(401)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"bad secret"}`)
	}))
	t.Cleanup(authSrv.Close)

	b := &page{t: t, ctx: browser}
	b.login(a, password)
	b.do("fill an HTTP Request token with a wrong client secret and test it",
		chromedp.Click("#new-token"),
		chromedp.WaitVisible("#token-form"),
		chromedp.SetValue("#t-type", "http"), dispatch("#t-type", "change"),
		chromedp.WaitVisible("#http-fields"),
		chromedp.SendKeys("#t-id", "wrong"),
		chromedp.SendKeys("#t-url", authSrv.URL+"/token"),
		chromedp.SendKeys("#t-params div:nth-child(1) .k", "client_secret"),
		chromedp.SendKeys("#t-params div:nth-child(1) .v", "not-the-secret"),
		chromedp.SendKeys("#t-token-path", "access_token"), dispatch("#t-token-path", "input"),
		chromedp.Click("#test-request"))
	b.poll(`document.querySelector('#test-status').textContent.startsWith('test failed')`)
	b.screenshot("test-failed")
	status, httpStatus := b.text("#test-status"), b.text("#test-http-status")
	headers, body := b.str(`document.querySelector('#test-headers').textContent`), b.str(`document.querySelector('#test-body').textContent`)
	if status != "test failed: the auth endpoint answered 401" || b.str(`document.querySelector('#test-status').className`) != "error" {
		t.Errorf("test status %q", status)
	}
	if !b.eval(`!document.querySelector('#test-result').hidden`) || httpStatus != "401" {
		t.Errorf("auth response hidden or status %q", httpStatus)
	}
	if !strings.Contains(strings.ToLower(headers), "x-auth-trace: trace-77") {
		t.Errorf("auth response headers shown: %q", headers)
	}
	if !strings.Contains(body, "invalid_client") || !strings.Contains(body, "bad secret") {
		t.Errorf("auth response body shown: %q", body)
	}
	if !b.eval(`document.querySelector('#save-token').disabled`) {
		t.Error("Save is enabled after a failed test")
	}
}

// TestUILogsFailedResultSearchPagingExport: the result of a failed trigger
// shows its status, error code and message, attempts and the response;
// the logs are searched by context value, trigger, status and time, paged
// by 100 and exported as JSON lines.
func TestUILogsFailedResultSearchPagingExport(t *testing.T) {
	const password = "ui-admin-password-4"
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0", "ACTIONS_ADMIN_PASSWORD", password)
	browser := newBrowser(t)
	a := startService(t, env)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			fmt.Fprint(w, `{"ok":true}`)
			return
		}
		w.Header().Set("X-Request-Id", "req-500")
		w.WriteHeader(500)
		fmt.Fprint(w, `{"error":"boom in the shop"}`)
	}))
	t.Cleanup(api.Close)
	// 150 older events of another action, for paging, stored first.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now().Add(-2 * time.Hour)
	for i := range 150 {
		e := events.LogEvent{Time: events.FormatTime(start.Add(time.Duration(i) * time.Second)), Level: events.LevelInfo,
			Event: events.EventActionSucceeded, ActionID: "paging", TriggerID: fmt.Sprintf("p-%03d", i), Message: "ok"}
		data, _ := json.Marshal(e)
		if _, err := a.conn.js.Publish(ctx, "actions.log.paging", data); err != nil {
			t.Fatal(err)
		}
	}

	out, _, _ := cli(t, env, "trigger", "-id", "fail-1", "-action", "orders", "-url", api.URL+"/orders", "-method", "POST", "-body", "{}",
		"-context", `{"conversation":{"id":"conv-9"}}`, "-wait", "30s")
	if !strings.Contains(out, "failed") {
		t.Fatalf("the failing trigger: %q", out)
	}
	if out, _, err := cli(t, env, "trigger", "-id", "ok-1", "-action", "orders", "-url", api.URL+"/ok",
		"-context", `{"conversation":{"id":"conv-1"}}`, "-wait", "30s"); err != nil {
		t.Fatalf("the succeeding trigger: %q %v", out, err)
	}
	b := &page{t: t, ctx: browser}
	b.login(a, password)
	b.do("open the logs and search for the conversation",
		chromedp.Click("#nav-logs"),
		chromedp.WaitVisible(`#logs-table tr[data-trigger="ok-1"]`),
		chromedp.SendKeys("#f-context", "conv-9"), dispatch("#f-context", "change"))
	b.poll(`document.querySelector('#logs-table tr[data-trigger="ok-1"]') === null && document.querySelector('#logs-table tr[data-trigger="fail-1"]') !== null`)
	rows := b.num(`document.querySelectorAll('#logs-table tbody tr').length`)
	timeText := b.text(`#logs-table tr[data-trigger="fail-1"] td.time`)
	timeTitle := b.str(`document.querySelector('#logs-table tr[data-trigger="fail-1"] td.time time').title`)
	if rows != 1 {
		t.Errorf("search by context value: %v rows, want the failed trigger's one", rows)
	}
	if !regexp.MustCompile(`^(just now|\d+ s ago)$`).MatchString(timeText) || !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`).MatchString(timeTitle) {
		t.Errorf("time shown %q, title %q: want a relative time with the exact one on hover", timeText, timeTitle)
	}
	b.do("open the failed result",
		chromedp.Click(`#logs-table tr[data-trigger="fail-1"]`),
		chromedp.WaitVisible("#result-panel"))
	b.poll(`document.querySelector('#rp-status').textContent !== ''`)
	b.screenshot("failed-result")
	got := map[string]string{}
	for _, id := range []string{"rp-status", "rp-code", "rp-message", "rp-http", "rp-attempts", "rp-response-body", "rp-response-headers", "rp-error"} {
		got[id] = b.str(`document.querySelector('#` + id + `').textContent`)
	}
	want := map[string]string{"rp-status": "failed", "rp-code": "http_error", "rp-message": "the action answered 500", "rp-http": "500", "rp-error": ""}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got["rp-attempts"] == "" || got["rp-attempts"] == "0" || !strings.Contains(got["rp-response-body"], "boom in the shop") ||
		!strings.Contains(strings.ToLower(got["rp-response-headers"]), "x-request-id: req-500") {
		t.Errorf("attempts %q, response %q %q", got["rp-attempts"], got["rp-response-headers"], got["rp-response-body"])
	}

	b.do("search by trigger id and status",
		clear("#f-context"), chromedp.SendKeys("#f-trigger", "ok-1"), dispatch("#f-trigger", "change"))
	b.poll(`document.querySelector('#logs-table tr[data-trigger="fail-1"]') === null && document.querySelector('#logs-table tr[data-trigger="ok-1"]') !== null`)
	b.do("status failed", clear("#f-trigger"), chromedp.SendKeys("#f-status", "failed"), dispatch("#f-status", "change"))
	b.poll(`document.querySelector('#logs-table tr[data-trigger="ok-1"]') === null && document.querySelector('#logs-table tr[data-trigger="fail-1"]') !== null`)

	b.do("export what the filter selects",
		chromedp.Evaluate[chromedp.Void](`window.exported = null; fetch(document.querySelector('#f-export').href).then((r) => r.text()).then((t) => { window.exported = t; })`))
	b.poll(`window.exported !== null`)
	exported := strings.Split(strings.TrimSpace(b.str(`window.exported`)), "\n")
	for _, l := range exported {
		var e events.LogEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.TriggerID != "fail-1" {
			t.Errorf("exported line %q (%v), want only the failed trigger's events", l, err)
		}
	}
	if !strings.Contains(b.str(`document.querySelector('#f-export').getAttribute('href')`), "status=failed") {
		t.Error("the export link does not carry the filter")
	}

	b.do("page through 150 events of one action",
		clear("#f-status"), chromedp.SendKeys("#f-action", "paging"), dispatch("#f-action", "change"))
	b.poll(`document.querySelectorAll('#logs-table tbody tr').length === 100 && document.querySelector('#logs-table tbody tr').dataset.trigger === 'p-149'`)
	b.do("older", chromedp.Click("#logs-older"))
	b.poll(`document.querySelectorAll('#logs-table tbody tr').length === 50 && document.querySelector('#logs-table tbody tr').dataset.trigger === 'p-049'`)
	if !b.eval(`document.querySelector('#logs-older').disabled && !document.querySelector('#logs-newer').disabled`) {
		t.Error("on the oldest page: Older should be disabled and Newer enabled")
	}
	b.do("newer", chromedp.Click("#logs-newer"))
	b.poll(`document.querySelectorAll('#logs-table tbody tr').length === 100 && document.querySelector('#logs-table tbody tr').dataset.trigger === 'p-149'`)
	b.do("a time range",
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const local = (ms) => { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000); return d.toISOString().slice(0, 19); };
			document.querySelector('#f-from').value = local(%d); document.querySelector('#f-to').value = local(%d); })()`,
			start.Add(10*time.Second).UnixMilli(), start.Add(19*time.Second).UnixMilli())),
		dispatch("#f-to", "change"))
	b.poll(`document.querySelectorAll('#logs-table tbody tr').length === 10 && document.querySelector('#logs-table tbody tr').dataset.trigger === 'p-019'`)
}

// TestUIUsability: relative times with the exact one on hover, a
// destructive Delete that asks first, the form scrolled into view on Edit,
// a layout without horizontal overflow at 400 px and the Breakers page
// saying until when an open breaker stays open.
func TestUIUsability(t *testing.T) {
	const password = "ui-admin-password-5"
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0", "ACTIONS_ADMIN_PASSWORD", password,
		"ACTIONS_BREAKER_CONSECUTIVE", "2", "ACTIONS_BREAKER_COOLDOWN", "10m", "ACTIONS_BREAKER_MAX_COOLDOWN", "20m")
	browser := newBrowser(t)
	a := startService(t, env)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(api.Close)
	for i := range 2 {
		cli(t, env, "trigger", "-id", fmt.Sprintf("flaky-%d", i), "-action", "flaky", "-url", api.URL, "-wait", "30s")
	}

	b := &page{t: t, ctx: browser}
	b.do("narrow screen", chromedp.EmulateViewport(400, 600))
	b.login(a, password)
	b.do("save twelve text tokens", chromedp.Evaluate[chromedp.Void](`(async () => {
		for (let i = 1; i <= 12; i++) await admin('tokens.save', {id: 'tk-' + i, name: 'Token number ' + i, description: 'a token for the tests of the narrow layout',
			type: 'text', header: 'Authorization', prefix: 'Bearer ', value: 'text-token-value-' + i});
		loadTokens();
	})()`))
	b.poll(`document.querySelectorAll('#tokens-table tbody tr').length === 12`)
	if w := b.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("tokens page at 400 px: %v px wide", w)
	}
	b.do("edit the last token", chromedp.Click(`#tokens-table tr[data-id="tk-9"] button.edit`))
	b.poll(`document.querySelector('#t-id').value === 'tk-9'`)
	b.poll(`(() => { const top = document.querySelector('#token-form').getBoundingClientRect().top; return top >= -1 && top < innerHeight / 2; })()`)
	if w := b.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("token form at 400 px: %v px wide", w)
	}
	b.screenshot("narrow-form")

	deleteBtn := `#tokens-table tr[data-id="tk-2"] button.delete`
	color := b.str(`getComputedStyle(document.querySelector('` + deleteBtn + `')).color + ' ' + getComputedStyle(document.querySelector('` + deleteBtn + `')).borderColor`)
	if !strings.Contains(color, "rgb(192, 57, 43)") {
		t.Errorf("Delete is not styled as destructive: %s", color)
	}
	b.do("delete asks first; cancel keeps the token",
		chromedp.Click(deleteBtn),
		chromedp.WaitVisible(`#tokens-table tr[data-id="tk-2"] button.confirm-delete`),
		chromedp.Click(`#tokens-table tr[data-id="tk-2"] button.cancel-delete`),
		chromedp.WaitVisible(deleteBtn))
	if out, _, err := cli(t, env, "tokens", "get", "tk-2"); err != nil {
		t.Fatalf("the token is gone after Cancel: %q %v", out, err)
	}
	b.do("delete, confirmed",
		chromedp.Click(deleteBtn),
		chromedp.Click(`#tokens-table tr[data-id="tk-2"] button.confirm-delete`),
		chromedp.WaitNotPresent(`#tokens-table tr[data-id="tk-2"]`))
	if _, _, err := cli(t, env, "tokens", "get", "tk-2"); err == nil {
		t.Error("the token is still stored after a confirmed delete")
	}

	b.do("the logs at 400 px", chromedp.Click("#nav-logs"), chromedp.WaitVisible(`#logs-table tr[data-trigger="flaky-0"]`))
	if w := b.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("logs page at 400 px: %v px wide", w)
	}
	b.screenshot("narrow-logs")
	b.do("the breakers", chromedp.Click("#nav-breakers"), chromedp.WaitVisible("#breakers-page"))
	b.poll(`(loadBreakers(), document.querySelector('#breakers-table tr[data-action="flaky"] td.until time') !== null)`)
	until, untilTitle := b.str(`document.querySelector('#breakers-table tr[data-action="flaky"] td.until').textContent`), b.str(`document.querySelector('#breakers-table tr[data-action="flaky"] td.until time').title`)
	if !regexp.MustCompile(`^in (9|10) min$`).MatchString(until) {
		t.Errorf("open until %q, want in about 10 min", until)
	}
	if !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`).MatchString(untilTitle) {
		t.Errorf("open until title %q, want the exact time", untilTitle)
	}
	if w := b.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("breakers page at 400 px: %v px wide", w)
	}
	b.screenshot("narrow-breakers")
}
