package admin_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"customactions/admin"
	"customactions/auth"
	"customactions/internal/oauthtest"
)

func oauthJSON(srv *oauthtest.Server, grant, refresh string) string {
	return `{"id":"crm","type":"oauth2","prefix":"Bearer ","oauth2":{"grant":"` + grant + `","token_url":"` + srv.TokenURL +
		`","client_id":"` + srv.ClientID + `","client_secret":"` + srv.ClientSecret + `","scopes":["api"],"refresh_token":"` + refresh + `"}}`
}

// TestOAuth2SaveSpendsThePastedRefreshToken: saving a refresh_token token
// refreshes once, keeps the rotated refresh token in the connection (not
// the pasted one, not in the token), shows the status, and never shows a
// secret; saved again after invalid_grant, it recovers.
func TestOAuth2SaveSpendsThePastedRefreshToken(t *testing.T) {
	f := newFixture(t)
	srv := oauthtest.New(t, oauthtest.Options{})
	var mu sync.Mutex
	var changes []auth.HealthChange
	f.mgr.OnHealthChange(func(c auth.HealthChange) { mu.Lock(); changes = append(changes, c); mu.Unlock() })

	pasted := srv.MintRefreshToken(t)
	saved, err := f.adm.Handle(t.Context(), "tokens.save", []byte(oauthJSON(srv, "refresh_token", pasted)))
	if err != nil {
		t.Fatal(err)
	}
	if tok := saved.(*auth.Token); tok.OAuth2.RefreshToken != "" {
		t.Errorf("the saved token keeps a refresh token")
	}
	if srv.RefreshCalls() != 1 {
		t.Errorf("%d refreshes on save, want 1", srv.RefreshCalls())
	}
	stored, _ := f.store.Get(t.Context(), "crm")
	if stored.OAuth2.RefreshToken != "" {
		t.Errorf("the stored token holds a refresh token")
	}
	view, err := f.adm.Handle(t.Context(), "tokens.get", []byte(`{"id":"crm"}`))
	if err != nil {
		t.Fatal(err)
	}
	v := view.(admin.TokenView)
	if v.Status != auth.HealthOK || v.StatusChangedAt == "" || v.Fetched == nil || v.Fetched.RefreshTokenPreview == "" {
		t.Errorf("view %+v %+v: want status ok with its time and the connection", v, v.Fetched)
	}
	data := string(mustJSON(t, view))
	for _, secret := range []string{pasted, srv.ClientSecret} {
		if strings.Contains(data, secret) {
			t.Errorf("tokens.get shows a secret: %s", data)
		}
	}

	// An edit sends the view back: the connection and the secret are kept,
	// and the edit tests the connection's refresh token with one refresh.
	var edit map[string]any
	_ = json.Unmarshal([]byte(data), &edit)
	edit["name"] = "CRM renamed"
	edit["oauth2"].(map[string]any)["refresh_token"] = v.Fetched.RefreshTokenPreview
	if _, err := f.adm.Handle(t.Context(), "tokens.save", mustJSON(t, edit)); err != nil {
		t.Fatalf("edit sent back as viewed: %v", err)
	}
	if srv.ReusedRefreshTokens() != 0 || srv.FamiliesRevoked() != 0 {
		t.Errorf("a refresh token was sent twice")
	}

	// The grant is revoked: saving without a new refresh token fails and
	// says so; a new one recovers the token.
	srv.RevokeAll()
	_, err = f.adm.Handle(t.Context(), "tokens.save", mustJSON(t, edit))
	if e := admin.AsError(err); e == nil || e.Code != admin.CodeTestFailed || !strings.Contains(e.Message, "invalid_grant") {
		t.Fatalf("save after revocation: %v", err)
	}
	list, err := f.adm.Handle(t.Context(), "tokens.list", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if l := string(mustJSON(t, list)); !strings.Contains(l, `"status":"reauthorization_required"`) || !strings.Contains(l, "invalid_grant") {
		t.Errorf("tokens.list after invalid_grant: %s", l)
	}
	if _, err := f.adm.Handle(t.Context(), "tokens.save", []byte(oauthJSON(srv, "refresh_token", srv.MintRefreshToken(t)))); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, c := range changes {
		got = append(got, c.From+">"+c.To)
	}
	if want := ">ok ok>reauthorization_required reauthorization_required>ok"; strings.Join(got, " ") != want {
		t.Errorf("health changes %q, want %q", strings.Join(got, " "), want)
	}
}

func TestOAuth2SaveRefused(t *testing.T) {
	f := newFixture(t)
	srv := oauthtest.New(t, oauthtest.Options{})
	tests := []struct {
		name, body, wantCode, wantIn string
	}{
		{"spent refresh token", oauthJSON(srv, "refresh_token", "not-a-refresh-token-0123456789"), admin.CodeTestFailed, "invalid_grant"},
		{"no refresh token", oauthJSON(srv, "refresh_token", ""), admin.CodeInvalidToken, "refresh_token"},
		{"wrong secret", strings.Replace(oauthJSON(srv, "client_credentials", ""), srv.ClientSecret, "wrong-secret-0123456789", 1), admin.CodeTestFailed, "invalid_client"},
		{"bad grant", oauthJSON(srv, "implicit", ""), admin.CodeInvalidToken, "oauth2.grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.adm.Handle(t.Context(), "tokens.save", []byte(tc.body))
			e := admin.AsError(err)
			if e == nil || e.Code != tc.wantCode || !strings.Contains(e.Message, tc.wantIn) {
				t.Fatalf("got %+v, want %s mentioning %q", e, tc.wantCode, tc.wantIn)
			}
			if strings.Contains(e.Message, "wrong-secret-0123456789") || strings.Contains(e.Message, "not-a-refresh-token") {
				t.Errorf("the error shows a secret: %s", e.Message)
			}
		})
	}
	if _, err := f.store.Get(t.Context(), "crm"); err == nil {
		t.Errorf("a refused token was saved")
	}
}

func TestOAuth2AuthorizationCodeSavedNotConnected(t *testing.T) {
	f := newFixture(t)
	srv := oauthtest.New(t, oauthtest.Options{})
	body := strings.Replace(oauthJSON(srv, "authorization_code", ""), `"scopes"`, `"authorize_url":"`+srv.URL+`/authorize","scopes"`, 1)
	if _, err := f.adm.Handle(t.Context(), "tokens.save", []byte(body)); err != nil {
		t.Fatal(err)
	}
	view, _ := f.adm.Handle(t.Context(), "tokens.get", []byte(`{"id":"crm"}`))
	if v := view.(admin.TokenView); v.Status != auth.HealthReauthorizationRequired || !strings.Contains(v.LastError, "not connected") {
		t.Errorf("an authorization_code token saved without a refresh token: %+v", v)
	}
	if srv.TokenCalls() != 0 {
		t.Errorf("%d token requests", srv.TokenCalls())
	}
}

func TestOAuth2TestRequest(t *testing.T) {
	f := newFixture(t)
	srv := oauthtest.New(t, oauthtest.Options{})
	r, err := f.adm.Handle(t.Context(), "tokens.test", []byte(oauthJSON(srv, "client_credentials", "")))
	if err != nil {
		t.Fatal(err)
	}
	if tr := r.(*admin.TestReply); !tr.OK || tr.TokenPreview == "" || tr.ExpiresIn <= 0 {
		t.Errorf("client_credentials test: %+v", tr)
	}
	pasted := srv.MintRefreshToken(t)
	if _, err := f.adm.Handle(t.Context(), "tokens.test", []byte(oauthJSON(srv, "refresh_token", pasted))); err != nil {
		t.Fatal(err)
	}
	if srv.RefreshCalls() != 0 {
		t.Errorf("tokens.test spent the refresh token")
	}
}
