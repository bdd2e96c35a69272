package webui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"

	"customactions/admin"
)

// echoAdmin answers every admin request with its verb.
type echoAdmin struct{}

func (echoAdmin) Handle(_ context.Context, verb string, _ []byte) (any, error) {
	if verb == "tokens.nope" {
		return nil, &admin.Error{Code: "unknown_request", Message: "nope"}
	}
	return map[string]string{"verb": verb}, nil
}

func newUI(t *testing.T) (*httptest.Server, *http.Client) {
	s, err := New(Config{Password: "pw-correct-horse"}, echoAdmin{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return srv, &http.Client{Jar: jar}
}

func post(t *testing.T, c *http.Client, url, body string, csrf bool) (int, string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if csrf {
		req.Header.Set("X-Requested-With", "actions-ui")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLoginSessionAndCSRF(t *testing.T) {
	srv, c := newUI(t)
	if code, _ := post(t, c, srv.URL+"/ui/api/admin/tokens.list", `{}`, true); code != 401 {
		t.Errorf("admin request before login: %d, want 401", code)
	}
	if code, _ := post(t, c, srv.URL+"/ui/login", `{"password":"wrong"}`, false); code != 401 {
		t.Errorf("wrong password: %d", code)
	}
	if code, _ := post(t, c, srv.URL+"/ui/login", `{"password":"pw-correct-horse"}`, false); code != 200 {
		t.Fatalf("login: %d", code)
	}
	if code, body := post(t, c, srv.URL+"/ui/api/admin/tokens.list", `{}`, true); code != 200 || !strings.Contains(body, "tokens.list") {
		t.Errorf("admin request after login: %d %s", code, body)
	}
	if code, body := post(t, c, srv.URL+"/ui/api/admin/tokens.nope", `{}`, true); code != 200 || !strings.Contains(body, `"code":"unknown_request"`) {
		t.Errorf("admin error reply: %d %s", code, body)
	}
	// A cross-site form post carries the cookie but not the header.
	if code, _ := post(t, c, srv.URL+"/ui/api/admin/tokens.delete", `{"id":"x"}`, false); code != 403 {
		t.Errorf("request without X-Requested-With: %d, want 403", code)
	}
	// A forged cookie is refused.
	forged := &http.Client{}
	req, _ := http.NewRequest("POST", srv.URL+"/ui/api/admin/tokens.list", strings.NewReader(`{}`))
	req.Header.Set("X-Requested-With", "actions-ui")
	req.AddCookie(&http.Cookie{Name: cookieName, Value: "99999999999.abc.0000"})
	if resp, err := forged.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("forged session: %v %v", resp.StatusCode, err)
	}
	// Logging out ends the session.
	post(t, c, srv.URL+"/ui/logout", ``, false)
	if code, _ := post(t, c, srv.URL+"/ui/api/admin/tokens.list", `{}`, true); code != 401 {
		t.Errorf("after logout: %d, want 401", code)
	}
}

func TestLoginLockout(t *testing.T) {
	srv, c := newUI(t)
	for range 5 {
		post(t, c, srv.URL+"/ui/login", `{"password":"guess"}`, false)
	}
	if code, _ := post(t, c, srv.URL+"/ui/login", `{"password":"pw-correct-horse"}`, false); code != http.StatusTooManyRequests {
		t.Errorf("sixth login within a minute: %d, want 429", code)
	}
}

func TestPagesAreEmbedded(t *testing.T) {
	srv, c := newUI(t)
	for _, path := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		resp, err := c.Get(srv.URL + path)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, err, resp.StatusCode)
		}
	}
	if _, err := New(Config{}, echoAdmin{}, nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a UI without a password was created")
	}
}
