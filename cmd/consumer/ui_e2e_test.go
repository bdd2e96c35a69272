package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's Chromium; the e2e tests skip, saying so,
// where it is not installed (.ci/run installs it).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("Chromium is not installed (apt-get install chromium): skipping the browser end-to-end test")
	return ""
}

func newBrowser(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// TestUIEndToEnd creates an HTTP-request token through the page, tests it
// against a local auth server, saves it, sees it listed with its secrets
// masked, fires a trigger and sees its log events and result.
func TestUIEndToEnd(t *testing.T) {
	const password = "ui-admin-password-1"
	const clientSecret = "ui-client-secret-4321"
	const fetched = "ui-fetched-token-0001"
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0", "ACTIONS_ADMIN_PASSWORD", password)
	browser := newBrowser(t)
	a := startService(t, env)

	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("client_secret") != clientSecret {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, fetched)
	}))
	t.Cleanup(authSrv.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+fetched {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(201)
		fmt.Fprint(w, `{"order":"o-1"}`)
	}))
	t.Cleanup(api.Close)

	base := "http://" + a.httpAddr + "/ui/"
	b := &page{t: t, ctx: browser}
	event := func(sel, kind string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new Event(%q, {bubbles: true}))`, sel, kind))
	}
	b.do("log in",
		chromedp.Navigate(base),
		chromedp.WaitVisible("#login-password"),
		chromedp.SendKeys("#login-password", password),
		chromedp.Click("#login-submit"),
		chromedp.WaitVisible("#tokens-page"))
	b.do("fill the HTTP Request token form",
		chromedp.Click("#new-token"),
		chromedp.WaitVisible("#token-form"),
		chromedp.SetValue("#t-type", "http"), event("#t-type", "change"),
		chromedp.WaitVisible("#http-fields"),
		chromedp.SendKeys("#t-id", "shop"),
		chromedp.SendKeys("#t-name", "Shop"),
		chromedp.SendKeys("#t-description", "client credentials"),
		chromedp.SendKeys("#t-url", authSrv.URL+"/oauth/token"),
		chromedp.SendKeys("#t-params div:nth-child(1) .k", "client_secret"),
		chromedp.SendKeys("#t-params div:nth-child(1) .v", clientSecret),
		chromedp.Click("#add-param"),
		chromedp.SendKeys("#t-params div:nth-child(2) .k", "grant_type"),
		chromedp.SendKeys("#t-params div:nth-child(2) .v", "client_credentials"),
		chromedp.SendKeys("#t-token-path", "access_token"),
		chromedp.SendKeys("#t-expires-path", "expires_in"), event("#t-expires-path", "input"))
	saveDisabled := b.eval(`document.querySelector('#save-token').disabled`)
	b.do("test the request",
		chromedp.Click("#test-request"),
		chromedp.WaitVisible("#test-result"))
	b.poll(`document.querySelector('#test-status').textContent === 'test passed'`)
	testBody := b.text("#test-body")
	b.screenshot("tested")
	saveEnabled := !b.eval(`document.querySelector('#save-token').disabled`)
	b.do("save", chromedp.Click("#save-token"), chromedp.WaitVisible(`#tokens-table tr[data-id="shop"]`))
	tokensText := b.text("#tokens-table")
	b.screenshot("listed")
	b.do("edit", chromedp.Click(`#tokens-table tr[data-id="shop"] button.edit`), chromedp.WaitVisible("#t-url"))
	b.poll(`document.querySelector('#t-params div:nth-child(1) .v') !== null`)
	paramValue := b.value(`#t-params div:nth-child(1) .v`)
	b.do("cancel the edit, open the Logs tab and send a test trigger",
		chromedp.Click("#cancel-token"),
		chromedp.Click("#nav-logs"),
		chromedp.WaitVisible("#logs-page"),
		chromedp.Click("#test-trigger summary"),
		chromedp.SendKeys("#tt-action", "create-order"),
		chromedp.SetValue("#tt-method", "POST"),
		chromedp.SendKeys("#tt-url", api.URL+"/orders"),
		chromedp.SendKeys("#tt-token", "shop"),
		chromedp.Sleep(500*time.Millisecond), // the live follow subscribes
		chromedp.Click("#tt-send"),
		chromedp.WaitVisible(`#logs-table tr[data-event="action_succeeded"]`),
		chromedp.WaitVisible(`#logs-table tr[data-event="token_refreshed"]`),
		chromedp.Click(`#logs-table tr[data-event="action_succeeded"]`),
		chromedp.WaitVisible("#result-panel"))
	b.poll(`document.querySelector('#rp-status').textContent !== ''`)
	resultStatus, resultAttempts := b.text("#rp-status"), b.text("#rp-attempts")
	b.screenshot("logs")
	pageHTML, err := chromedp.Run(browser, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatal(err)
	}
	saveDisabledOK := saveEnabled
	if !saveDisabled {
		t.Error("Save was enabled before a passing test request")
	}
	if !saveDisabledOK {
		t.Error("Save stayed disabled after a passing test request")
	}
	if !strings.Contains(testBody, "access_token") || strings.Contains(testBody, fetched) {
		t.Errorf("test response shown: %q (want the body with the token masked)", testBody)
	}
	if !strings.Contains(tokensText, "Shop") || !strings.Contains(tokensText, "HTTP Request") {
		t.Errorf("tokens table: %q", tokensText)
	}
	if !strings.HasPrefix(paramValue, "****") {
		t.Errorf("the edit form shows the client secret as %q, want it masked", paramValue)
	}
	if resultStatus != "succeeded" || resultAttempts != "1" {
		t.Errorf("result panel: status %q attempts %q", resultStatus, resultAttempts)
	}
	for _, secret := range []string{clientSecret, fetched, password} {
		if strings.Contains(pageHTML, secret) || strings.Contains(tokensText, secret) {
			t.Errorf("the page shows the secret %q", secret)
		}
	}
}

// page drives one browser tab and fails the test on the first error.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p *page) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.screenshot("failed")
		p.t.Fatalf("%s: %v", step, err)
	}
}

func (p *page) eval(expr string) bool {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (p *page) poll(expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		p.screenshot("failed")
		p.t.Fatalf("wait for %s: %v", expr, err)
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Text(sel))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (p *page) value(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Value(sel))
	if err != nil {
		p.t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}

// screenshot saves the page as $TMPDIR/ui-<name>.png, for a person to look at.
func (p *page) screenshot(name string) {
	if buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(fmt.Sprintf("%s/ui-%s.png", os.TempDir(), name), buf, 0o644)
	}
}
