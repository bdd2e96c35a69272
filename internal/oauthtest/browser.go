package oauthtest

import (
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Login does what a browser does with authorizeURL when the user signs in
// as username: it follows the redirects that lead to the login page, posts
// the page's form and returns the URL the server redirected to: the
// redirect URI with code and state, or with error and state.
//
// authorizeURL may be the server's authorize URL or a link on another
// loopback server that redirects to it. Login follows a redirect only to
// the server itself and returns the first redirect to anywhere else
// unfollowed, also when it comes before the login page (a request the
// server refused). It fails t when a request fails, leaves loopback, or
// ends on a page that is neither the login page nor a redirect (an invalid
// client or redirect URI; a wrong password, which shows the page again).
func (s *Server) Login(t testing.TB, authorizeURL, username, password string) *url.URL {
	t.Helper()
	return s.submit(t, authorizeURL, url.Values{"username": {username}, "password": {password}})
}

// Deny is Login with the deny button: the URL it returns carries
// error=access_denied and the state.
func (s *Server) Deny(t testing.TB, authorizeURL string) *url.URL {
	t.Helper()
	return s.submit(t, authorizeURL, url.Values{"deny": {"1"}})
}

// formAction finds the action of the login page's form.
var formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)

// submit walks to the login page and posts form.
func (s *Server) submit(t testing.TB, authorizeURL string, form url.Values) *url.URL {
	t.Helper()
	self, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatalf("authorize URL: %v", err)
	}
	b := browser{t: t, client: &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	var page string
	for hops := 0; ; hops++ {
		status, next, body := b.do(http.MethodGet, u, nil)
		if next != nil && next.Host == self.Host && hops < 10 {
			u = next
			continue
		}
		if next != nil {
			return next
		}
		if status != http.StatusOK || u.Host != self.Host || !formAction.MatchString(body) {
			t.Fatalf("GET %s: status %d, not the login page: %.300s", u.Redacted(), status, body)
		}
		page = body
		break
	}
	action, err := u.Parse(html.UnescapeString(formAction.FindStringSubmatch(page)[1]))
	if err != nil {
		t.Fatalf("login form action: %v", err)
	}
	status, next, body := b.do(http.MethodPost, action, form)
	if next == nil {
		t.Fatalf("POST %s: status %d and no redirect: %.300s", action.Redacted(), status, body)
	}
	return next
}

// browser sends the requests of Login and Deny, to loopback only.
type browser struct {
	t      testing.TB
	client *http.Client
}

// do sends one request and returns the status, the resolved Location of a
// redirect (nil for any other answer) and the body.
func (b browser) do(method string, u *url.URL, form url.Values) (int, *url.URL, string) {
	b.t.Helper()
	if !loopback(u) {
		b.t.Fatalf("%s %s: not a loopback URL", method, u.Redacted())
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, u.String(), body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		b.t.Fatalf("%s %s: read body: %v", method, u.Redacted(), err)
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
		return resp.StatusCode, nil, string(page)
	}
	next, err := u.Parse(loc)
	if err != nil {
		b.t.Fatalf("%s %s: Location %q: %v", method, u.Redacted(), loc, err)
	}
	return resp.StatusCode, next, string(page)
}

// loopback reports whether u is an http(s) URL of a loopback host.
func loopback(u *url.URL) bool {
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
