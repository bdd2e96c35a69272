package webui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that tests move.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newServer is newUI with its Server, options and a TLS choice.
func newServer(t *testing.T, tls bool, opts ...Option) (*Server, *httptest.Server, *http.Client) {
	s, err := New(Config{Password: "pw-correct-horse", SessionMaxAge: time.Hour}, echoAdmin{}, nil, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	mux.Handle("GET /debug/pprof/", s.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "profiles") })))
	var srv *httptest.Server
	var c *http.Client
	if tls {
		srv = httptest.NewTLSServer(mux)
		c = srv.Client()
	} else {
		srv = httptest.NewServer(mux)
		c = &http.Client{}
	}
	t.Cleanup(srv.Close)
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s, srv, c
}

func do(t *testing.T, c *http.Client, method, url, body string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

var csrf = map[string]string{"X-Requested-With": "actions-ui"}

func login(t *testing.T, c *http.Client, base string, header map[string]string) *http.Response {
	t.Helper()
	resp := do(t, c, "POST", base+"/ui/login", `{"password":"pw-correct-horse"}`, header)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return resp
}

func TestEveryResponseHasSecurityHeaders(t *testing.T) {
	_, srv, c := newServer(t, false)
	type req struct{ method, path, body string }
	check := func(r req, h map[string]string) {
		t.Helper()
		resp := do(t, c, r.method, srv.URL+r.path, r.body, h)
		for k, want := range map[string]string{
			"Content-Security-Policy": contentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s %s (%d): %s = %q, want %q", r.method, r.path, resp.StatusCode, k, got, want)
			}
		}
	}
	// Before login: pages, redirects, refusals.
	for _, r := range []req{
		{"GET", "/", ""}, {"GET", "/ui/", ""}, {"GET", "/ui/index.html", ""}, {"GET", "/ui/app.js", ""}, {"GET", "/ui/style.css", ""},
		{"GET", "/ui/nope.html", ""}, {"GET", "/ui/api/session", ""}, {"POST", "/ui/api/admin/tokens.list", "{}"},
		{"POST", "/ui/login", `{"password":"wrong"}`}, {"GET", "/debug/pprof/", ""},
	} {
		check(r, csrf)
	}
	login(t, c, srv.URL, nil)
	for _, r := range []req{
		{"GET", "/ui/api/session", ""}, {"POST", "/ui/api/admin/tokens.list", "{}"}, {"GET", "/ui/api/logs?action=bad%20id", ""},
		{"GET", "/debug/pprof/", ""}, {"POST", "/ui/api/trigger", "not json"},
	} {
		check(r, csrf)
	}
	check(req{"POST", "/ui/api/admin/tokens.list", "{}"}, nil) // 403 without X-Requested-With
	check(req{"POST", "/ui/logout", ""}, nil)
}

// TestPagesNeedNoInlineScript keeps the pages within the policy: no inline
// script, event handler attribute or inline style for it to block.
func TestPagesNeedNoInlineScript(t *testing.T) {
	if strings.Contains(contentSecurityPolicy, "unsafe-") {
		t.Errorf("the policy allows unsafe sources: %s", contentSecurityPolicy)
	}
	html, _ := static.ReadFile("static/index.html")
	js, _ := static.ReadFile("static/app.js")
	for _, bad := range []struct {
		what string
		re   *regexp.Regexp
		in   []byte
	}{
		{"inline <script>", regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`), html},
		{"an event handler attribute", regexp.MustCompile(`(?i)\son[a-z]+\s*=`), html},
		{"inline style", regexp.MustCompile(`(?i)<style|\sstyle\s*=`), html},
		{"a javascript: URL", regexp.MustCompile(`(?i)javascript:`), html},
		{"eval or new Function", regexp.MustCompile(`\beval\(|new Function\(`), js},
		{"HTML injection sinks", regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write`), js},
		{"a style attribute", regexp.MustCompile(`['"]style['"]|\bstyle:`), js},
	} {
		if loc := bad.re.FindIndex(bad.in); loc != nil {
			t.Errorf("%s in the page: %q", bad.what, bad.in[loc[0]:min(loc[1]+20, len(bad.in))])
		}
	}
	for _, tag := range regexp.MustCompile(`(?i)<script\b[^>]*>`).FindAll(html, -1) {
		if !strings.Contains(string(tag), "src=") {
			t.Errorf("a script without src: %s", tag)
		}
	}
	if !strings.Contains(string(html), `<script src="app.js"></script>`) {
		t.Error("index.html does not load app.js as a file")
	}
}

func TestLogoutEndsTheSessionOnTheServer(t *testing.T) {
	_, srv, c := newServer(t, false)
	cookieOf := func(resp *http.Response) *http.Cookie {
		for _, ck := range resp.Cookies() {
			if ck.Name == cookieName {
				return ck
			}
		}
		t.Fatal("no session cookie set")
		return nil
	}
	copied := cookieOf(login(t, c, srv.URL, nil))
	other := &http.Client{} // a second browser of the same admin
	other.Jar, _ = cookiejar.New(nil)
	otherCookie := cookieOf(login(t, other, srv.URL, nil))

	withCookie := func(ck *http.Cookie) int {
		req, _ := http.NewRequest("POST", srv.URL+"/ui/api/admin/tokens.list", strings.NewReader("{}"))
		req.Header.Set("X-Requested-With", "actions-ui")
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := withCookie(copied); code != 200 {
		t.Fatalf("the copied cookie before logout: %d, want 200", code)
	}
	resp := do(t, c, "POST", srv.URL+"/ui/logout", "", nil)
	if ck := cookieOf(resp); ck.MaxAge >= 0 || ck.Value != "" {
		t.Errorf("logout did not clear the cookie: %+v", ck)
	}
	if code := withCookie(copied); code != 401 {
		t.Errorf("the copied cookie after logout: %d, want 401", code)
	}
	if code := withCookie(otherCookie); code != 200 {
		t.Errorf("another session after this one logged out: %d, want 200", code)
	}
	// Logging in again gives a new, working session.
	if code := withCookie(cookieOf(login(t, c, srv.URL, nil))); code != 200 {
		t.Errorf("a new login after logout: %d", code)
	}
}

func TestSessionExpires(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	s, srv, c := newServer(t, false, WithClock(clock.Now))
	login(t, c, srv.URL, nil)
	if code := do(t, c, "GET", srv.URL+"/ui/api/session", "", nil).StatusCode; code != 200 {
		t.Fatalf("session: %d", code)
	}
	clock.Add(time.Hour)
	if code := do(t, c, "GET", srv.URL+"/ui/api/session", "", nil).StatusCode; code != 401 {
		t.Errorf("session after its max age: %d, want 401", code)
	}
	mem := s.sessions.store.(*memStore)
	mem.mu.Lock()
	n := len(mem.live)
	mem.mu.Unlock()
	if n != 0 {
		t.Errorf("%d expired sessions kept", n)
	}
}

func TestSessionsAreBounded(t *testing.T) {
	mem := newMemStore()
	ss := &sessions{store: mem, key: []byte("k")}
	ctx, now := context.Background(), time.Now()
	first, _ := ss.create(ctx, now, now.Add(time.Minute))
	for i := range maxSessions {
		ss.create(ctx, now, now.Add(time.Hour+time.Duration(i)*time.Second))
	}
	if len(mem.live) != maxSessions {
		t.Errorf("%d sessions kept, want %d", len(mem.live), maxSessions)
	}
	if ok, _ := ss.valid(ctx, first, now); ok {
		t.Error("the session closest to its expiry was kept beyond the bound")
	}
}

func TestSessionCookie(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tls        bool
		header     map[string]string
		wantSecure bool
	}{
		{"plain http", false, nil, false},
		{"tls", true, nil, true},
		{"behind a TLS proxy", false, map[string]string{"X-Forwarded-Proto": "https"}, true},
		{"behind a chain of proxies", false, map[string]string{"X-Forwarded-Proto": "HTTPS, http"}, true},
		{"Forwarded header", false, map[string]string{"Forwarded": `for=192.0.2.60;proto=https;by=203.0.113.43`}, true},
		{"proxy over plain http", false, map[string]string{"X-Forwarded-Proto": "http"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv, c := newServer(t, tc.tls)
			resp := login(t, c, srv.URL, tc.header)
			var ck *http.Cookie
			for _, x := range resp.Cookies() {
				if x.Name == cookieName {
					ck = x
				}
			}
			if ck == nil {
				t.Fatal("no session cookie")
			}
			if ck.Secure != tc.wantSecure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
				t.Errorf("cookie %s: Secure %v (want %v), HttpOnly %v, SameSite %v, Path %q", ck.Name, ck.Secure, tc.wantSecure, ck.HttpOnly, ck.SameSite, ck.Path)
			}
			out := do(t, c, "POST", srv.URL+"/ui/logout", "", tc.header)
			for _, x := range out.Cookies() {
				if x.Name == cookieName && x.Secure != tc.wantSecure {
					t.Errorf("logout cookie Secure %v, want %v", x.Secure, tc.wantSecure)
				}
			}
		})
	}
}

func TestRequireSession(t *testing.T) {
	_, srv, c := newServer(t, false)
	if code := do(t, c, "GET", srv.URL+"/debug/pprof/", "", nil).StatusCode; code != 401 {
		t.Errorf("a page behind the login, logged out: %d, want 401", code)
	}
	login(t, c, srv.URL, nil)
	if code := do(t, c, "GET", srv.URL+"/debug/pprof/", "", nil).StatusCode; code != 200 {
		t.Errorf("a page behind the login, logged in: %d, want 200", code)
	}
	do(t, c, "POST", srv.URL+"/ui/logout", "", nil)
	if code := do(t, c, "GET", srv.URL+"/debug/pprof/", "", nil).StatusCode; code != 401 {
		t.Errorf("a page behind the login after logout: %d, want 401", code)
	}
}
