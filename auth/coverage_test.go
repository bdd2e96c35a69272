package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestOAuth2Validation(t *testing.T) {
	t.Parallel()
	good := func() *Token {
		return &Token{ID: "crm", Type: TypeOAuth2, OAuth2: &OAuth2{Grant: "refresh_token", TokenURL: "https://login.example.com/token",
			ClientID: "abc", ClientSecret: "client-secret-1", RefreshToken: "rt-1", Scopes: []string{"api"}}}
	}
	tests := []struct {
		name   string
		mutate func(*Token)
		want   string
	}{
		{"valid", func(*Token) {}, ""},
		{"no oauth2 object", func(t *Token) { t.OAuth2 = nil }, "needs an oauth2 object"},
		{"a value too", func(t *Token) { t.Value = "x" }, "has no value"},
		{"no grant", func(t *Token) { t.OAuth2.Grant = "" }, "missing field oauth2.grant"},
		{"unknown grant", func(t *Token) { t.OAuth2.Grant = "password" }, `oauth2.grant "password"`},
		{"no token_url", func(t *Token) { t.OAuth2.TokenURL = "" }, "missing field oauth2.token_url"},
		{"ftp token_url", func(t *Token) { t.OAuth2.TokenURL = "ftp://x/t" }, "oauth2.token_url must be an absolute http"},
		{"no client_id", func(t *Token) { t.OAuth2.ClientID = " " }, "missing field oauth2.client_id"},
		{"client_auth", func(t *Token) { t.OAuth2.ClientAuth = "jwt" }, `oauth2.client_auth "jwt"`},
		{"scope with a space", func(t *Token) { t.OAuth2.Scopes = []string{"a b"} }, "oauth2.scopes"},
		{"extra param of the grant", func(t *Token) { t.OAuth2.ExtraParams = map[string]string{"client_secret": "x"} }, "is set by the grant"},
		{"unnamed extra param", func(t *Token) { t.OAuth2.ExtraParams = map[string]string{"": "x"} }, "needs a name"},
		{"refresh token with a line break", func(t *Token) { t.OAuth2.RefreshToken = "a\nb" }, "line break"},
		{"refresh token with client_credentials", func(t *Token) { t.OAuth2.Grant = GrantClientCredentials }, "not used by grant client_credentials"},
		{"authorization_code without authorize_url", func(t *Token) { t.OAuth2.Grant = GrantAuthorizationCode }, "oauth2.authorize_url"},
		{"bad revoke_url", func(t *Token) { t.OAuth2.RevokeURL = "mailto:x" }, "oauth2.revoke_url"},
		{"per end user with grant refresh_token", func(t *Token) { t.OAuth2.PerEndUser = true }, "per_end_user needs grant authorization_code"},
		{"expired status 200", func(t *Token) { t.OAuth2.ExpiredStatuses = []int{200} }, "not an error status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := good()
			tc.mutate(tok)
			tok.Normalize()
			err := tok.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidToken)):
				t.Fatalf("Validate: %v, want ErrInvalidToken saying %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "client-secret-1") {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestSecretJSONAndFormatting(t *testing.T) {
	t.Parallel()
	var s Secret
	if err := json.Unmarshal([]byte(`"a-long-secret-value"`), &s); err != nil || s.Reveal() != "a-long-secret-value" {
		t.Fatalf("UnmarshalJSON: %q %v", s.Reveal(), err)
	}
	if err := json.Unmarshal([]byte(`42`), &s); err == nil {
		t.Error("a number decoded as a secret")
	}
	for _, got := range []string{fmt.Sprintf("%#v", s), fmt.Sprintf("%v", s), s.String()} {
		if strings.Contains(got, "secret-value") {
			t.Errorf("formatted secret shows itself: %s", got)
		}
	}
}

func TestStoreListDeleteAndForget(t *testing.T) {
	t.Parallel()
	rs := newReplicaSet(t)
	p := newProvider(t)
	rs.put(t, &Token{ID: "b", Type: TypeText, Value: "text-b-secret", Header: "Authorization"})
	rs.put(t, &Token{ID: "a", Type: TypeText, Value: "text-a-secret", Header: "Authorization"})
	rs.put(t, p.httpToken())
	if _, err := rs.tokens.Put(t.Context(), "broken", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	list, err := rs.store.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tok := range list {
		ids = append(ids, tok.ID)
	}
	if strings.Join(ids, ",") != "a,b,broken,shop" || !strings.Contains(list[2].Description, ErrTokenUnreadable.Error()) {
		t.Errorf("listed %v (%q)", ids, list[2].Description)
	}
	a, mgr := rs.replica(t)
	if _, err := a.Do(t.Context(), Ref{TokenID: "shop"}, func(_ context.Context, c Credential) int { return 200 }); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Forget(t.Context(), "shop"); err != nil || mgr.Peek("shop") != nil {
		t.Errorf("Forget: %v, still known: %v", err, mgr.Peek("shop") != nil)
	}
	if err := rs.store.Delete(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if err := rs.store.Delete(t.Context(), "a"); !errors.Is(err, ErrTokenNotFound) {
		t.Errorf("deleting a deleted token: %v", err)
	}
	if c := (Credential{}); c.Lookahead() != 0 || c.Redacts() {
		t.Error("the zero credential redacts")
	}
	f := NewFetcher(WithAuthTimeout(time.Second))
	if f.timeout != time.Second {
		t.Error("WithAuthTimeout")
	}
}
