package oauthtest_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"customactions/internal/oauthtest"
)

// flow is a server, a callback server registered as redirect URI after the
// start, and an x/oauth2 client of both.
type flow struct {
	srv  *oauthtest.Server
	conf *oauth2.Config
}

func newFlow(t *testing.T, opts oauthtest.Options) flow {
	t.Helper()
	srv := oauthtest.New(t, opts)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(cb.Close)
	srv.AllowRedirectURI(cb.URL + "/callback")
	return flow{srv: srv, conf: &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		Endpoint:    oauth2.Endpoint{AuthURL: srv.AuthorizeURL, TokenURL: srv.TokenURL},
		RedirectURL: cb.URL + "/callback", Scopes: []string{"api", "offline_access"}}}
}

// code logs in as user with PKCE and returns the code and the verifier.
func (f flow) code(t *testing.T, user, password string) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	got := f.srv.Login(t, f.conf.AuthCodeURL("state-"+user, oauth2.S256ChallengeOption(verifier)), user, password)
	if q := got.Query(); q.Get("code") == "" || q.Get("state") != "state-"+user {
		t.Fatalf("redirected to %s, want a code and state-%s", got, user)
	}
	return got.Query().Get("code"), verifier
}

// oauthError returns the error code of a token endpoint refusal.
func oauthError(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *oauth2.RetrieveError", err)
	}
	return re.ErrorCode
}

func TestCodeFlowPKCE(t *testing.T) {
	tests := []struct {
		name, user, password string
		style                oauth2.AuthStyle
		wantBasic            bool
	}{
		{name: "alice, basic", user: "alice", password: "alice-password", style: oauth2.AuthStyleInHeader, wantBasic: true},
		{name: "bob, in body", user: "bob", password: "bob-password", style: oauth2.AuthStyleInParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, oauthtest.Options{})
			f.conf.Endpoint.AuthStyle = tt.style
			ctx := t.Context()
			code, verifier := f.code(t, tt.user, tt.password)
			tok, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if sub, ok := f.srv.Subject(ctx, tok.AccessToken); !ok || sub != tt.user {
				t.Errorf("Subject = %q, %v, want %q", sub, ok, tt.user)
			}
			if got := tok.Extra("scope"); got != "api offline_access" {
				t.Errorf("scope = %v, want api offline_access", got)
			}
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
			if reqs := f.srv.Requests(); (reqs[0].BasicUser != "") != tt.wantBasic || reqs[0].Form.Get("code_verifier") != verifier {
				t.Errorf("token request = %+v, want Basic %v and the verifier", reqs[0], tt.wantBasic)
			}

			next, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if err != nil {
				t.Fatal(err)
			}
			if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
				t.Errorf("refresh token not rotated: %q", next.RefreshToken)
			}
			if sub, ok := f.srv.Subject(ctx, next.AccessToken); !ok || sub != tt.user {
				t.Errorf("Subject after refresh = %q, %v, want %q", sub, ok, tt.user)
			}
			if got := [...]int64{f.srv.AuthorizeCalls(), f.srv.CodeExchanges(), f.srv.Rotations(), f.srv.FamiliesRevoked()}; got != [...]int64{1, 1, 1, 0} {
				t.Errorf("AuthorizeCalls, CodeExchanges, Rotations, FamiliesRevoked = %v, want [1 1 1 0]", got)
			}
		})
	}
}

// A link of another server that redirects to the authorize URL is
// followed; the callback is not.
func TestLoginFollowsLink(t *testing.T) {
	f := newFlow(t, oauthtest.Options{})
	verifier := oauth2.GenerateVerifier()
	target := f.conf.AuthCodeURL("state-from-link", oauth2.S256ChallengeOption(verifier))
	link := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}))
	t.Cleanup(link.Close)
	got := f.srv.Login(t, link.URL+"/connect/abc", "alice", "alice-password")
	if !strings.HasPrefix(got.String(), f.conf.RedirectURL+"?") || got.Query().Get("state") != "state-from-link" {
		t.Fatalf("redirected to %s", got)
	}
	tok, err := f.conf.Exchange(t.Context(), got.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if sub, _ := f.srv.Subject(t.Context(), tok.AccessToken); sub != "alice" {
		t.Errorf("Subject = %q, want alice", sub)
	}
}

// The server refuses a request without an S256 challenge before the login
// page, with a redirect to the client.
func TestAuthorizeRequiresS256(t *testing.T) {
	tests := []struct {
		name string
		opts []oauth2.AuthCodeOption
	}{
		{name: "no challenge"},
		{name: "plain", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("code_challenge_method", "plain")}},
		{name: "no method", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", oauth2.GenerateVerifier())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, oauthtest.Options{})
			got := f.srv.Login(t, f.conf.AuthCodeURL("state-pkce", tt.opts...), "alice", "alice-password")
			if q := got.Query(); q.Get("error") != "invalid_request" || q.Get("state") != "state-pkce" || q.Has("code") {
				t.Errorf("redirected to %s, want error=invalid_request and the state", got)
			}
			if n := f.srv.AuthorizeCalls(); n != 0 {
				t.Errorf("AuthorizeCalls = %d, want 0 (refused before the login page)", n)
			}
		})
	}
}

func TestExchangeRefused(t *testing.T) {
	f := newFlow(t, oauthtest.Options{})
	// Auto-detection would send each refused request again with the
	// other style.
	f.conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	ctx := t.Context()

	code, _ := f.code(t, "alice", "alice-password")
	_, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	if got := oauthError(t, err); got != "invalid_grant" {
		t.Errorf("wrong verifier: error %q, want invalid_grant", got)
	}
	// fosite calls a missing verifier a malformed request.
	_, err = f.conf.Exchange(ctx, code)
	if got := oauthError(t, err); got != "invalid_request" {
		t.Errorf("no verifier: error %q, want invalid_request", got)
	}

	code, verifier := f.code(t, "alice", "alice-password")
	tok, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if got := oauthError(t, err); got != "invalid_grant" {
		t.Errorf("code used twice: error %q, want invalid_grant", got)
	}
	// RFC 6749 §4.1.2: fosite also revokes what the code gave.
	if _, ok := f.srv.Subject(ctx, tok.AccessToken); ok {
		t.Error("access token of a code used twice still valid")
	}
	_, err = f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if got := oauthError(t, err); got != "invalid_grant" {
		t.Errorf("refresh token of a code used twice: error %q, want invalid_grant", got)
	}
	// fosite marks that refresh token used, as after a rotation: presenting
	// it counts as a reuse.
	if n := f.srv.FamiliesRevoked(); n != 1 {
		t.Errorf("FamiliesRevoked = %d, want 1", n)
	}
	if n := f.srv.CodeExchanges(); n != 4 {
		t.Errorf("CodeExchanges = %d, want 4", n)
	}
}

func TestDeny(t *testing.T) {
	f := newFlow(t, oauthtest.Options{})
	got := f.srv.Deny(t, f.conf.AuthCodeURL("state-deny", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if !strings.HasPrefix(got.String(), f.conf.RedirectURL+"?") {
		t.Errorf("redirected to %s, want the callback", got)
	}
	if q := got.Query(); q.Get("error") != "access_denied" || q.Get("state") != "state-deny" || q.Has("code") {
		t.Errorf("redirected to %s, want error=access_denied and the state", got)
	}
}

// post sends the login form of an authorize URL as a browser would.
func post(t *testing.T, authorizeURL string, form url.Values) (*http.Response, string) {
	t.Helper()
	u, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, authorizeURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.URL.RawQuery = u.RawQuery
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestLoginPage(t *testing.T) {
	f := newFlow(t, oauthtest.Options{})
	state := `<script>alert("x")</script>`
	authURL := f.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))

	resp, err := noRedirects.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d: %s", resp.StatusCode, page)
	}
	for _, want := range []string{`name="username"`, `id="username"`, `name="password"`, `id="password"`,
		`id="login"`, `id="deny" type="submit" name="deny" value="1"`} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %s:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Errorf("state not escaped:\n%s", page)
	}

	resp, page = post(t, authURL, url.Values{"username": {"alice"}, "password": {"wrong"}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Errorf("wrong password: status %d, Location %q, want 200 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(page, "Wrong username or password") || !strings.Contains(page, `id="login"`) || !strings.Contains(page, `value="alice"`) {
		t.Errorf("wrong password: page lacks the error or the form:\n%s", page)
	}
	if n := f.srv.AuthorizeCalls(); n != 1 {
		t.Errorf("AuthorizeCalls = %d, want 1", n)
	}
}

// A redirect URI the client did not register gets fosite's error answer,
// not a redirect.
func TestUnknownRedirectURI(t *testing.T) {
	f := newFlow(t, oauthtest.Options{})
	f.conf.RedirectURL = "https://elsewhere.example/callback"
	resp, err := noRedirects.Get(f.conf.AuthCodeURL("state-unknown", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("status %d, Location %q, want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestUsersOption(t *testing.T) {
	f := newFlow(t, oauthtest.Options{Users: map[string]string{"carol": "carol-password"}})
	resp, page := post(t, f.conf.AuthCodeURL("state-users", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())),
		url.Values{"username": {"alice"}, "password": {"alice-password"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Wrong username or password") {
		t.Errorf("alice without the default users: status %d:\n%s", resp.StatusCode, page)
	}
	code, verifier := f.code(t, "carol", "carol-password")
	tok, err := f.conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if sub, _ := f.srv.Subject(t.Context(), tok.AccessToken); sub != "carol" {
		t.Errorf("Subject = %q, want carol", sub)
	}
	if f.srv.MintRefreshToken(t) == "" {
		t.Error("MintRefreshToken without alice gave no token")
	}
}

// Client credentials and minted tokens keep their own subjects: the
// client, and the user of the password grant.
func TestSubjectOfOtherGrants(t *testing.T) {
	f := newFlow(t, oauthtest.Options{})
	ctx := t.Context()
	cc := clientcredentials.Config{ClientID: f.srv.ClientID, ClientSecret: f.srv.ClientSecret, TokenURL: f.srv.TokenURL}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sub, _ := f.srv.Subject(ctx, tok.AccessToken); sub != f.srv.ClientID {
		t.Errorf("client_credentials Subject = %q, want %q", sub, f.srv.ClientID)
	}
	minted, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: f.srv.MintRefreshToken(t)}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if sub, _ := f.srv.Subject(ctx, minted.AccessToken); sub != "alice" {
		t.Errorf("minted Subject = %q, want alice", sub)
	}
	if _, ok := f.srv.Subject(ctx, minted.RefreshToken); ok {
		t.Error("Subject accepted a refresh token")
	}
}
