package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestUIEditHTTPTokenWithoutRetyping (issue 18): the edit form of an HTTP
// Request token shows the values that are not secret (Accept, grant_type,
// client_id) as they are and the secret ones masked (client_secret, and
// tenant and X-Custom, marked by request.secret_fields); Test passes
// without retyping anything, the test response shows the echoed
// grant_type and the Content-Type in clear, and a save keeps
// secret_fields, so the values they mark stay masked.
func TestUIEditHTTPTokenWithoutRetyping(t *testing.T) {
	const password = "ui-admin-password-18"
	const clientSecret = "ui-client-secret-4321"
	const tenant = "ui-tenant-secret-8765"
	const custom = "ui-custom-header-2468"
	const fetched = "ui-fetched-token-0018"
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0", "ACTIONS_ADMIN_PASSWORD", password)
	browser := newBrowser(t)
	a := startService(t, env)

	var calls, refused atomic.Int64
	authSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.FormValue("client_secret") != clientSecret || r.FormValue("tenant") != tenant ||
			r.FormValue("grant_type") != "client_credentials" || r.FormValue("client_id") != "client-42" ||
			r.Header.Get("X-Custom") != custom || r.Header.Get("Accept") != "application/json" {
			refused.Add(1)
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600,"grant_type":%q}`, fetched, r.FormValue("grant_type"))
	}))
	t.Cleanup(authSrv.Close)
	tokenFile := writeFile(t, "shop.json", `{"id":"shop","name":"Shop","type":"http","token_path":"access_token",
		"request":{"method":"POST","url":"`+authSrv.URL+`/oauth/token",
		"headers":{"Accept":"application/json","X-Custom":"`+custom+`"},
		"params":{"grant_type":"client_credentials","client_id":"client-42","client_secret":"`+clientSecret+`","tenant":"`+tenant+`"},
		"secret_fields":["params.tenant","headers.X-Custom"]}}`)
	if out, errOut, err := cli(t, env, "tokens", "save", "-f", tokenFile); err != nil {
		t.Fatalf("tokens save: %v %s %s", err, out, errOut)
	}

	b := &page{t: t, ctx: browser}
	rows := func(sel string) map[string]string {
		t.Helper()
		var m map[string]string
		js := fmt.Sprintf(`JSON.stringify(Object.fromEntries([...document.querySelectorAll('%s > div')].map(r => [r.querySelector('.k').value, r.querySelector('.v').value])))`, sel)
		if err := json.Unmarshal([]byte(b.str(js)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	edit := func() {
		t.Helper()
		b.do("edit the token", chromedp.WaitVisible(`#tokens-table tr[data-id="shop"] button.edit`),
			chromedp.Click(`#tokens-table tr[data-id="shop"] button.edit`), chromedp.WaitVisible("#t-url"))
		b.poll(`document.querySelectorAll('#t-params > div').length === 4 && document.querySelectorAll('#t-headers > div').length === 2`)
	}
	b.login(a, password)
	edit()
	params, headers := rows("#t-params"), rows("#t-headers")
	b.do("test the request as shown", chromedp.Click("#test-request"), chromedp.WaitVisible("#test-result"))
	b.poll(`document.querySelector('#test-status').textContent !== 'testing…'`)
	status, testBody, testHeaders := b.text("#test-status"), b.text("#test-body"), b.str(`document.querySelector('#test-headers').textContent`)
	b.screenshot("secret-fields-tested")
	b.do("save the edit", chromedp.Click("#save-token"), chromedp.WaitNotVisible("#token-form"))
	edit()
	paramsAfter, headersAfter := rows("#t-params"), rows("#t-headers")
	pageHTML, err := chromedp.Run(browser, chromedp.OuterHTML("html"))
	if err != nil {
		t.Fatal(err)
	}

	if params["grant_type"] != "client_credentials" || params["client_id"] != "client-42" || headers["Accept"] != "application/json" {
		t.Errorf("the edit form shows params %v headers %v, want grant_type, client_id and Accept in clear", params, headers)
	}
	for name, v := range map[string]string{"client_secret": params["client_secret"], "tenant": params["tenant"], "X-Custom": headers["X-Custom"],
		"tenant after the save": paramsAfter["tenant"], "X-Custom after the save": headersAfter["X-Custom"]} {
		if !strings.HasPrefix(v, "****") {
			t.Errorf("the edit form shows %s as %q, want it masked", name, v)
		}
	}
	if status != "test passed" || refused.Load() != 0 {
		t.Errorf("test of the edit as shown: %q (%d of %d auth requests refused)", status, refused.Load(), calls.Load())
	}
	if !strings.Contains(testBody, `"grant_type": "client_credentials"`) || !strings.Contains(testHeaders, "Content-Type: application/json") {
		t.Errorf("the test response shows body %q headers %q, want grant_type and Content-Type in clear", testBody, testHeaders)
	}
	for _, secret := range []string{clientSecret, tenant, custom, fetched, password} {
		if strings.Contains(pageHTML, secret) {
			t.Errorf("the page shows the secret %q", secret)
		}
	}
}
