package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"customactions/internal/oauthtest"
)

// dispatch fires a DOM event on the element of sel, as a user's change
// would.
func dispatch(sel, kind string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new Event(%q, {bubbles: true}))`, sel, kind))
}

// TestUIOAuth2EndToEnd creates an oauth2 client_credentials token through
// the page against a real authorization server (fosite), tests and saves
// it, sees it listed with health ok (and the CLI too), fires a trigger
// that the API accepts with the token's access token, then saves a
// refresh_token token whose test spends no refresh token and whose save
// spends the pasted one once.
func TestUIOAuth2EndToEnd(t *testing.T) {
	const password = "ui-admin-password-2"
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0", "ACTIONS_ADMIN_PASSWORD", password)
	browser := newBrowser(t)
	a := startService(t, env)
	srv := oauthtest.New(t, oauthtest.Options{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !srv.Valid(r.Context(), tok) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"contact":{"id":42}}`)
	}))
	t.Cleanup(api.Close)

	b := &page{t: t, ctx: browser}
	b.do("log in",
		chromedp.Navigate("http://"+a.httpAddr+"/ui/"),
		chromedp.WaitVisible("#login-password"),
		chromedp.SendKeys("#login-password", password),
		chromedp.Click("#login-submit"),
		chromedp.WaitVisible("#tokens-page"))
	b.do("fill the OAuth 2.0 token form (client_credentials)",
		chromedp.Click("#new-token"),
		chromedp.WaitVisible("#token-form"),
		chromedp.SetValue("#t-type", "oauth2"), dispatch("#t-type", "change"),
		chromedp.WaitVisible("#oauth2-fields"),
		chromedp.SendKeys("#t-id", "crm"),
		chromedp.SendKeys("#t-name", "CRM"),
		chromedp.SendKeys("#o-token-url", srv.TokenURL),
		chromedp.SendKeys("#o-client-id", srv.ClientID),
		chromedp.SendKeys("#o-client-secret", srv.ClientSecret),
		chromedp.SetValue("#o-client-auth", "body"), dispatch("#o-client-auth", "change"),
		chromedp.SendKeys("#o-scopes", "api read"),
		chromedp.Click("#add-extra"),
		chromedp.SendKeys("#o-extra div:nth-child(1) .k", "audience"),
		chromedp.SendKeys("#o-extra div:nth-child(1) .v", "crm"))
	refreshHidden := b.eval(`document.querySelector('#o-refresh-row').offsetParent === null && document.querySelector('#o-authorize-row').offsetParent === null`)
	saveDisabled := b.eval(`document.querySelector('#save-token').disabled`)
	b.do("test the token request", chromedp.Click("#o-test-request"), chromedp.WaitVisible("#o-test-result"))
	b.poll(`document.querySelector('#o-test-status').textContent === 'test passed'`)
	preview := b.text("#o-test-token-preview")
	saveEnabled := !b.eval(`document.querySelector('#save-token').disabled`)
	b.screenshot("oauth2-tested")
	b.do("save", chromedp.Click("#save-token"), chromedp.WaitVisible(`#tokens-table tr[data-id="crm"] .badge`))
	badge := b.text(`#tokens-table tr[data-id="crm"] .badge`)
	badgeTitle, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('#tokens-table tr[data-id="crm"] .badge').title`))
	if err != nil {
		t.Fatal(err)
	}
	row := b.text(`#tokens-table tr[data-id="crm"]`)
	b.screenshot("oauth2-listed")

	b.do("send a test trigger with the token",
		chromedp.Click("#nav-logs"),
		chromedp.WaitVisible("#logs-page"),
		chromedp.Click("#test-trigger summary"),
		chromedp.SendKeys("#tt-action", "lookup-contact"),
		chromedp.SendKeys("#tt-url", api.URL+"/contacts/42"),
		chromedp.SendKeys("#tt-token", "crm"),
		chromedp.Sleep(500*time.Millisecond), // the live follow subscribes
		chromedp.Click("#tt-send"),
		chromedp.WaitVisible(`#logs-table tr[data-event="action_succeeded"]`),
		chromedp.Click(`#logs-table tr[data-event="action_succeeded"]`),
		chromedp.WaitVisible("#result-panel"))
	b.poll(`document.querySelector('#rp-status').textContent !== ''`)
	resultStatus, resultHTTP := b.text("#rp-status"), b.text("#rp-http")

	// A refresh_token token: its test spends no refresh token, its save
	// spends the pasted one in one refresh.
	pasted := srv.MintRefreshToken(t, "api")
	b.do("fill a refresh_token token",
		chromedp.Click("#nav-tokens"),
		chromedp.WaitVisible("#tokens-page"),
		chromedp.Click("#new-token"),
		chromedp.WaitVisible("#token-form"),
		chromedp.SetValue("#t-type", "oauth2"), dispatch("#t-type", "change"),
		chromedp.SetValue("#o-grant", "refresh_token"), dispatch("#o-grant", "change"),
		chromedp.WaitVisible("#o-refresh-token"),
		chromedp.SendKeys("#t-id", "crm-user"),
		chromedp.SendKeys("#o-token-url", srv.TokenURL),
		chromedp.SendKeys("#o-client-id", srv.ClientID),
		chromedp.SendKeys("#o-client-secret", srv.ClientSecret),
		chromedp.SendKeys("#o-scopes", "api"),
		chromedp.SendKeys("#o-refresh-token", pasted),
		chromedp.Click("#o-test-request"))
	b.poll(`document.querySelector('#o-test-status').textContent.startsWith('settings valid')`)
	refreshesAfterTest := srv.RefreshCalls()
	b.do("save the refresh_token token", chromedp.Click("#save-token"),
		chromedp.WaitVisible(`#tokens-table tr[data-id="crm-user"] .badge`))
	userBadge := b.text(`#tokens-table tr[data-id="crm-user"] .badge`)
	// An authorization_code token without a refresh token is saved not
	// connected: the badge says reauthorization required, and why.
	b.do("save an authorization_code token without a refresh token",
		chromedp.Click("#new-token"),
		chromedp.WaitVisible("#token-form"),
		chromedp.SetValue("#t-type", "oauth2"), dispatch("#t-type", "change"),
		chromedp.SetValue("#o-grant", "authorization_code"), dispatch("#o-grant", "change"),
		chromedp.WaitVisible("#o-authorize-url"),
		chromedp.SendKeys("#t-id", "crm-code"),
		chromedp.SendKeys("#o-token-url", srv.TokenURL),
		chromedp.SendKeys("#o-authorize-url", srv.URL+"/oauth2/authorize"),
		chromedp.SendKeys("#o-client-id", srv.ClientID),
		chromedp.SendKeys("#o-client-secret", srv.ClientSecret),
		chromedp.Click("#o-test-request"))
	b.poll(`document.querySelector('#o-test-status').textContent.startsWith('settings valid')`)
	b.do("save it", chromedp.Click("#save-token"), chromedp.WaitVisible(`#tokens-table tr[data-id="crm-code"] .badge`))
	codeBadge := b.text(`#tokens-table tr[data-id="crm-code"] .badge`)
	codeTitle, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('#tokens-table tr[data-id="crm-code"] .badge').title`))
	if err != nil {
		t.Fatal(err)
	}
	b.screenshot("oauth2-not-connected")
	b.do("edit the refresh_token token", chromedp.Click(`#tokens-table tr[data-id="crm-user"] button.edit`), chromedp.WaitVisible("#o-client-secret"))
	editSecret := b.value("#o-client-secret")
	editRefresh := b.value("#o-refresh-token")
	editSaveEnabled := !b.eval(`document.querySelector('#save-token').disabled`)
	b.screenshot("oauth2-edit")
	pageHTML, err := chromedp.Run(browser, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatal(err)
	}

	if !refreshHidden {
		t.Error("the refresh token or authorize URL field shows for grant client_credentials")
	}
	if !saveDisabled || !saveEnabled {
		t.Errorf("Save disabled before the test %v, enabled after it %v: want both", saveDisabled, saveEnabled)
	}
	if !strings.HasPrefix(preview, "access token ****") {
		t.Errorf("test shows %q, want the access token masked", preview)
	}
	if badge != "ok" || !strings.HasPrefix(badgeTitle, "since 20") {
		t.Errorf("health badge %q (title %q), want ok since <time>", badge, badgeTitle)
	}
	if !strings.Contains(row, "OAuth 2.0") || !strings.Contains(row, "****") {
		t.Errorf("token row %q: want its type and a masked access token", row)
	}
	if resultStatus != "succeeded" || resultHTTP != "200" {
		t.Errorf("result panel: status %q http %q", resultStatus, resultHTTP)
	}
	if refreshesAfterTest != 0 || srv.RefreshCalls() != 1 || userBadge != "ok" {
		t.Errorf("refreshes after the test %d, after the save %d, badge %q: want 0, 1 and ok", refreshesAfterTest, srv.RefreshCalls(), userBadge)
	}
	if codeBadge != "reauthorization required" || !strings.Contains(codeTitle, "last error: not connected") {
		t.Errorf("authorization_code token without a refresh token: badge %q title %q", codeBadge, codeTitle)
	}
	if !strings.HasPrefix(editSecret, "****") || editRefresh != "" || !editSaveEnabled {
		t.Errorf("edit form: client secret %q, refresh token %q, save enabled %v: want a mask, empty and enabled (the save tests it)", editSecret, editRefresh, editSaveEnabled)
	}
	for _, secret := range []string{srv.ClientSecret, pasted, password} {
		if strings.Contains(pageHTML, secret) || strings.Contains(row, secret) {
			t.Errorf("the page shows the secret %q", secret)
		}
	}

	out, _, err := cli(t, env, "tokens", "list")
	if err != nil || !strings.Contains(out, "STATUS") || !strings.Contains(out, "crm-user") {
		t.Errorf("tokens list: %q %v", out, err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "crm ") && !strings.Contains(line, " ok ") {
			t.Errorf("tokens list row of crm without status ok: %q", line)
		}
	}
	out, _, err = cli(t, env, "tokens", "get", "crm")
	if err != nil || !strings.Contains(out, "status:      ok") || !strings.Contains(out, "changed at:  20") || !strings.Contains(out, "last error:  -") {
		t.Errorf("tokens get: %q %v", out, err)
	}
	if strings.Contains(out, srv.ClientSecret) {
		t.Errorf("tokens get shows the client secret")
	}
}
