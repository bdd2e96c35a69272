package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"customactions/events"
	"customactions/internal/natstest"
	"customactions/internal/oauthtest"
)

// TestUIConnectEndToEnd runs the per-end-user connect flow of contract
// §11 in Chromium against a real authorization server (fosite, PKCE
// enforced) and two replicas over one NATS server. An admin saves a
// per_end_user authorization_code token through the page; a bot's trigger
// for contact_a gets authorization_required and a link, which the end user
// opens on the other replica than the one that made it (that one serves
// the redirect to the provider, the maker the callback), signs in as
// alice and is sent back to the "connected" page; the connection event names
// the trigger that asked, and the trigger sent again calls the API as
// alice. contact_b connects as bob the same way; each one's calls are made
// as themselves. The admin lists both connections, deletes contact_b's
// (revoked at the provider), and contact_b is asked to connect again. A
// spent link and a tampered one are refused with pages that say so; the
// Logs tab shows an authorization_required result without its link. A
// workspace-wide token is connected with Connect in the token list.
func TestUIConnectEndToEnd(t *testing.T) {
	const password = "ui-admin-password-connect"
	const action = "lookup-contact"
	addr1, addr2 := freeAddr(t), freeAddr(t)
	public1, public2 := "http://"+addr1, "http://"+addr2
	env := newEnv("ACTIONS_HTTP_ADDR", addr1, "ACTIONS_PUBLIC_URL", public1, "ACTIONS_ADMIN_PASSWORD", password)
	browser := newBrowser(t)
	a := startService(t, env)
	startReplica(t, a.conn.srv.ClientURL(), addr2)
	srv := oauthtest.New(t, oauthtest.Options{})
	srv.AllowRedirectURI(public1 + "/oauth/callback")
	srv.AllowRedirectURI(public2 + "/oauth/callback")
	api := newWhoAPI(t, srv)
	_, js := natstest.ConnectURL(t, a.conn.srv.ClientURL())

	// The admin saves the per_end_user token through the form.
	admin := &page{t: t, ctx: browser}
	admin.login(a, password)
	admin.do("fill a per_end_user authorization_code token",
		chromedp.Click("#new-token"),
		chromedp.WaitVisible("#token-form"),
		chromedp.SetValue("#t-type", "oauth2"), dispatch("#t-type", "change"),
		chromedp.SetValue("#o-grant", "authorization_code"), dispatch("#o-grant", "change"),
		chromedp.WaitVisible("#o-authorize-url"),
		chromedp.WaitVisible("#o-per-end-user"),
		chromedp.SendKeys("#t-id", "crm-user"),
		chromedp.SendKeys("#t-name", "CRM as the contact"),
		chromedp.SendKeys("#o-token-url", srv.TokenURL),
		chromedp.SendKeys("#o-authorize-url", srv.AuthorizeURL),
		chromedp.SendKeys("#o-revoke-url", srv.RevokeURL),
		chromedp.SendKeys("#o-client-id", srv.ClientID),
		chromedp.SendKeys("#o-client-secret", srv.ClientSecret),
		chromedp.SendKeys("#o-scopes", "api offline_access"),
		chromedp.Click("#o-per-end-user"))
	refreshHidden := admin.eval(`document.querySelector('#o-refresh-row').offsetParent === null`)
	admin.do("test it", chromedp.Click("#o-test-request"))
	admin.poll(`document.querySelector('#o-test-status').textContent.startsWith('settings valid')`)
	admin.do("save it", chromedp.Click("#save-token"),
		chromedp.WaitVisible(`#tokens-table tr[data-id="crm-user"] .per-user`))
	if !refreshHidden {
		t.Error("the refresh token field shows for a per_end_user token")
	}
	out, _, err := cli(t, env, "tokens", "get", "crm-user", "-o", "json")
	if err != nil || !strings.Contains(out, `"per_end_user": true`) || !strings.Contains(out, `"revoke_url": "`+srv.RevokeURL+`"`) ||
		!strings.Contains(out, `"offline_access"`) {
		t.Fatalf("the saved token: %q %v", out, err)
	}

	trigger := func(id, user string) events.Trigger {
		tr := events.Trigger{ID: id, ActionID: action, Source: "bot", TokenID: "crm-user",
			Request: events.Request{Method: "GET", URL: api.URL + "/me"}, EndUser: &events.EndUser{ID: user}}
		sendBotTrigger(t, js, tr)
		return tr
	}
	// otherReplica points a link of one replica at the other (as a load
	// balancer in front of both would), and returns the public URL of the
	// replica that made it: the provider sends the browser back to that
	// one's callback.
	otherReplica := func(link string) (string, string) {
		if rest, ok := strings.CutPrefix(link, public1); ok {
			return public2 + rest, public1
		}
		rest, _ := strings.CutPrefix(link, public2)
		return public1 + rest, public2
	}
	user := &page{t: t, ctx: newTab(t, browser)}
	// connect asks for a link for end user as trigger id, opens it on the
	// other replica, signs in at the provider and returns the link.
	connect := func(id, endUser, login, loginPassword string) string {
		t.Helper()
		calls := api.count()
		trigger(id, endUser)
		r := waitResult(t, js, action, id)
		if r.Status != events.StatusAuthorizationRequired || r.Error == nil || r.Error.Code != events.CodeAuthorizationRequired ||
			r.EndUserID != endUser || r.Attempts != 0 {
			t.Fatalf("result of %s: %+v, want authorization_required for %s without a call", id, r, endUser)
		}
		if !strings.HasPrefix(r.AuthorizationURL, public1+"/connect/") && !strings.HasPrefix(r.AuthorizationURL, public2+"/connect/") {
			t.Fatalf("authorization_url %q is not a connect link of a replica's public URL", r.AuthorizationURL)
		}
		if api.count() != calls {
			t.Errorf("the API was called for %s before %s connected", id, endUser)
		}
		link, maker := otherReplica(r.AuthorizationURL)
		user.do(endUser+" opens the link on the other replica and signs in as "+login,
			chromedp.Navigate(link),
			chromedp.WaitVisible("#username"),
			chromedp.SendKeys("#username", login),
			chromedp.SendKeys("#password", loginPassword),
			chromedp.Click("#login"),
			chromedp.WaitVisible("#title"))
		loc := user.str(`location.href`)
		title, msg := user.text("#title"), user.text("#message")
		user.screenshot("connected-" + endUser)
		if !strings.HasPrefix(loc, maker+"/oauth/callback?") || title != "Connected" ||
			!strings.Contains(msg, "Your account is connected. You can close this page") {
			t.Fatalf("%s after signing in at %s (link %s): at %q, page %q / %q", endUser, link, r.AuthorizationURL, loc, title, msg)
		}
		ev := waitFor(t, js, "ACTIONS_CONNECTIONS", "actions.connection.crm-user", "connection event of "+endUser,
			func(e events.ConnectionEvent) bool { return e.EndUserID == endUser && e.TriggerID == id })
		if ev.TokenID != "crm-user" || ev.Status != events.ConnectionConnected || ev.ActionID != action {
			t.Errorf("connection event of %s: %+v", endUser, ev)
		}
		return r.AuthorizationURL
	}
	// call sends a trigger for end user and returns the subject the API
	// saw it as.
	call := func(id, endUser string) string {
		t.Helper()
		trigger(id, endUser)
		if r := waitResult(t, js, action, id); r.Status != events.StatusSucceeded || r.HTTPStatus != http.StatusOK {
			t.Fatalf("result of %s (%s): status %q http %d error %+v", id, endUser, r.Status, r.HTTPStatus, r.Error)
		}
		return api.subject(id)
	}

	linkA := connect("trg-a-1", "contact_a", "alice", "alice-password")
	if sub := call("trg-a-2", "contact_a"); sub != "alice" {
		t.Errorf("contact_a's trigger sent again reached the API as %q, want alice", sub)
	}
	connect("trg-b-1", "contact_b", "bob", "bob-password")
	for i, want := range []struct{ user, subject string }{{"contact_b", "bob"}, {"contact_a", "alice"}, {"contact_b", "bob"}} {
		if sub := call(fmt.Sprintf("trg-mix-%d", i), want.user); sub != want.subject {
			t.Errorf("a trigger of %s reached the API as %q, want %s", want.user, sub, want.subject)
		}
	}

	// A spent link and a tampered one are refused with a page that says
	// why; nothing is connected.
	resp, err := noRedirect.Get(linkA)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(body), "already used") {
		t.Errorf("spent link: %d %q, want 410 saying it was used", resp.StatusCode, body)
	}
	user.do("open the spent link again", chromedp.Navigate(linkA), chromedp.WaitVisible("#message"))
	if msg := user.text("#message"); !strings.Contains(msg, "This link was already used") {
		t.Errorf("the spent link's page says %q", msg)
	}
	i := strings.LastIndex(linkA, "/") + 1
	flip := map[byte]string{'A': "B"}[linkA[i]]
	if flip == "" {
		flip = "A"
	}
	tampered := linkA[:i] + flip + linkA[i+1:]
	user.do("open a tampered link", chromedp.Navigate(tampered), chromedp.WaitVisible("#message"))
	if msg := user.text("#message"); !strings.Contains(msg, "not valid") {
		t.Errorf("a tampered link's page says %q", msg)
	}
	resp, err = noRedirect.Get(tampered)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("tampered link: status %d, want 400", resp.StatusCode)
	}

	// The admin sees both connections, filters, and deletes contact_b's,
	// on a narrow screen.
	admin.do("open the token's connections at 400 px",
		chromedp.EmulateViewport(400, 800),
		chromedp.Click(`#tokens-table tr[data-id="crm-user"] button.connections`),
		chromedp.WaitVisible(`#connections-table tr[data-end-user="contact_b"]`))
	rows := admin.num(`document.querySelectorAll('#connections-table tbody tr').length`)
	badgeA := admin.text(`#connections-table tr[data-end-user="contact_a"] .badge`)
	badgeB := admin.text(`#connections-table tr[data-end-user="contact_b"] .badge`)
	rowA := admin.text(`#connections-table tr[data-end-user="contact_a"]`)
	sinceTitle := admin.str(`document.querySelector('#connections-table tr[data-end-user="contact_a"] time').title`)
	admin.screenshot("connections")
	if w := admin.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("connections at 400 px: %v px wide", w)
	}
	if rows != 2 || badgeA != "ok" || badgeB != "ok" {
		t.Errorf("connections: %v rows, badges %q %q: want contact_a and contact_b, ok", rows, badgeA, badgeB)
	}
	if !strings.Contains(rowA, "****") || !strings.Contains(rowA, "just now") || !strings.Contains(sinceTitle, "20") {
		t.Errorf("contact_a's row %q (since %q): want masked tokens and the time of the change", rowA, sinceTitle)
	}
	admin.do("filter by end user",
		chromedp.SendKeys("#c-end-user", "contact_a"),
		chromedp.Click("#c-search"))
	admin.poll(`document.querySelectorAll('#connections-table tbody tr').length === 1 && document.querySelector('#connections-table tr[data-end-user="contact_a"]') !== null`)
	admin.do("show all again", chromedp.Click("#c-clear"),
		chromedp.WaitVisible(`#connections-table tr[data-end-user="contact_b"]`))
	revoked := srv.Revocations()
	admin.do("delete contact_b's connection",
		chromedp.Click(`#connections-table tr[data-end-user="contact_b"] button.delete`),
		chromedp.WaitVisible(`#connections-table tr[data-end-user="contact_b"] .confirm-delete`))
	question := admin.text(`#connections-table tr[data-end-user="contact_b"] .confirm`)
	admin.do("confirm", chromedp.Click(`#connections-table tr[data-end-user="contact_b"] .confirm-delete`))
	admin.poll(`document.querySelector('#connections-table tr[data-end-user="contact_b"]') === null`)
	admin.poll(`document.querySelector('#connections-status').textContent !== ''`)
	deleted := admin.text("#connections-status")
	admin.screenshot("connection-deleted")
	if !strings.Contains(question, "contact_b") || !strings.Contains(question, "revoked") {
		t.Errorf("delete asks %q", question)
	}
	if deleted != "Connection of end user contact_b deleted and revoked at the provider." || srv.Revocations() <= revoked {
		t.Errorf("after the delete: %q, revocations %d then %d", deleted, revoked, srv.Revocations())
	}
	admin.do("edit the per_end_user token", chromedp.Click(`#tokens-table tr[data-id="crm-user"] button.edit`),
		chromedp.WaitVisible("#o-per-end-user"))
	editOK := admin.eval(`document.querySelector('#o-per-end-user').checked && document.querySelector('#o-refresh-row').offsetParent === null &&
		document.querySelector('#o-revoke-url').value === ` + fmt.Sprintf("%q", srv.RevokeURL) + ` && document.querySelector('#o-scopes').value === 'api offline_access'`)
	admin.do("cancel the edit", chromedp.Click("#cancel-token"))
	if !editOK {
		t.Error("the edit form lost per_end_user, the revoke URL or the scopes, or offers a refresh token")
	}
	again := "trg-b-again"
	trigger(again, "contact_b")
	if r := waitResult(t, js, action, again); r.Status != events.StatusAuthorizationRequired || r.AuthorizationURL == "" {
		t.Errorf("contact_b after the delete: %+v, want authorization_required with a new link", r)
	} else if r.AuthorizationURL == linkA {
		t.Errorf("the new link repeats a spent one")
	}
	if sub := call("trg-a-last", "contact_a"); sub != "alice" {
		t.Errorf("contact_a after contact_b's delete reached the API as %q", sub)
	}

	// The Logs tab shows that result, but not its link.
	admin.do("open the Logs tab", chromedp.Click("#nav-logs"), chromedp.WaitVisible("#logs-page"))
	admin.do("search the trigger", chromedp.SetValue("#f-trigger", again), dispatch("#f-trigger", "change"))
	admin.poll(`document.querySelector('#logs-table tr[data-event="authorization_required"][data-trigger="` + again + `"]') !== null`)
	// The page may load the list once more (the tab's own load, then the
	// filter's): click the row found now rather than a node seen before.
	admin.do("open its result",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#logs-table tr[data-event="authorization_required"]').click()`),
		chromedp.WaitVisible("#result-panel"))
	admin.poll(`document.querySelector('#rp-status').textContent !== ''`)
	status, sent, code := admin.text("#rp-status"), admin.text("#rp-link-sent"), admin.text("#rp-code")
	links := admin.num(`document.querySelectorAll('#result-panel a[href*="/connect/"]').length`)
	admin.screenshot("authorization-required")
	if w := admin.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("the result panel at 400 px: %v px wide", w)
	}
	logsHTML, err := chromedp.Run(browser, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatal(err)
	}
	if status != "authorization_required" || code != "authorization_required" || sent != "link sent to end user contact_b (single use, not shown here)" {
		t.Errorf("result panel: status %q code %q %q", status, code, sent)
	}
	if links != 0 || strings.Contains(logsHTML, "/connect/") {
		t.Error("the Logs tab shows the end user's connect link")
	}

	// A workspace-wide token is connected by an admin with Connect.
	if _, _, err := cli(t, env, "tokens", "save", "-f", writeFile(t, "ws.json", fmt.Sprintf(
		`{"id":"crm-ws","name":"CRM workspace","type":"oauth2","oauth2":{"grant":"authorization_code","token_url":%q,"authorize_url":%q,"client_id":%q,"client_secret":%q,"scopes":["api","offline_access"]}}`,
		srv.TokenURL, srv.AuthorizeURL, srv.ClientID, srv.ClientSecret))); err != nil {
		t.Fatal(err)
	}
	admin.do("connect the workspace token",
		chromedp.Click("#nav-tokens"),
		chromedp.WaitVisible(`#tokens-table tr[data-id="crm-ws"] button.connect`),
		chromedp.Click(`#tokens-table tr[data-id="crm-ws"] button.connect`),
		chromedp.WaitVisible("#connect-link"))
	before := admin.text("#connect-health")
	href := admin.str(`document.querySelector('#connect-link').href`)
	target := admin.str(`document.querySelector('#connect-link').target + ' ' + document.querySelector('#connect-link').rel`)
	expiry := admin.text("#connect-expiry")
	user.do("the admin opens the link and signs in as alice",
		chromedp.Navigate(href),
		chromedp.WaitVisible("#username"),
		chromedp.SendKeys("#username", "alice"),
		chromedp.SendKeys("#password", "alice-password"),
		chromedp.Click("#login"),
		chromedp.WaitVisible("#title"))
	wsTitle := user.text("#title")
	admin.poll(`document.querySelector('#connect-health .badge') !== null && document.querySelector('#connect-health .badge').textContent === 'ok'`)
	admin.poll(`document.querySelector('#tokens-table tr[data-id="crm-ws"] .badge').textContent === 'ok'`)
	linkGone := admin.eval(`document.querySelector('#connect-link-row').hidden && !document.querySelector('#connect-done').hidden`)
	admin.screenshot("workspace-connected")
	if w := admin.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("the connect panel at 400 px: %v px wide", w)
	}
	if !linkGone {
		t.Error("the connect panel still offers the spent link after connecting")
	}
	if before != "not connected" && before != "reauthorization required" {
		t.Errorf("the workspace token before connecting: %q", before)
	}
	if !strings.HasPrefix(href, public1+"/connect/") || target != "_blank noopener noreferrer" || !strings.HasPrefix(expiry, "in ") {
		t.Errorf("connect link %q (%q), expires %q", href, target, expiry)
	}
	if wsTitle != "Connected" {
		t.Errorf("the workspace link ends on %q", wsTitle)
	}
	pageHTML, err := chromedp.Run(browser, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{srv.ClientSecret, password} {
		if strings.Contains(pageHTML, secret) || strings.Contains(logsHTML, secret) {
			t.Errorf("the page shows the secret %q", secret)
		}
	}
}

// newTab opens another tab of browser: the end user's, beside the
// admin's.
func newTab(t *testing.T, browser context.Context) context.Context {
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	return ctx
}
