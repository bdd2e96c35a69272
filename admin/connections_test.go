package admin_test

import (
	"strings"
	"testing"

	"customactions/admin"
	"customactions/internal/oauthtest"
)

// TestConnectionRequestsRefuseWhatCannotWork: the connection requests say
// what is wrong instead of doing nothing: the wrong kind of token, a
// missing or surplus end user, a limit out of range, no public URL.
func TestConnectionRequestsRefuseWhatCannotWork(t *testing.T) {
	f := newFixture(t)
	srv := oauthtest.New(t, oauthtest.Options{})
	save := func(id string, perUser bool) {
		t.Helper()
		pu := ""
		if perUser {
			pu = `"per_end_user":true,`
		}
		body := `{"id":"` + id + `","type":"oauth2","prefix":"Bearer ","oauth2":{"grant":"authorization_code",` + pu +
			`"authorize_url":"` + srv.AuthorizeURL + `","token_url":"` + srv.TokenURL + `","client_id":"` + srv.ClientID + `"}}`
		if _, err := f.adm.Handle(t.Context(), "tokens.save", []byte(body)); err != nil {
			t.Fatalf("save %s: %v", id, err)
		}
	}
	save("per-user", true)
	save("workspace", false)
	if _, err := f.adm.Handle(t.Context(), "tokens.save", []byte(f.httpToken(f.auth.URL))); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ verb, body, code, says string }{
		{"connections.list", `{"token_id":"shop"}`, admin.CodeBadRequest, "not an oauth2 token with grant authorization_code"},
		{"connections.list", `{"token_id":"nope"}`, admin.CodeNotFound, "does not exist"},
		{"connections.list", `{"token_id":"per-user","limit":5000}`, admin.CodeBadRequest, "limit 5000"},
		{"connections.list", `{"token_id":"per-user","end_user_id":"a.b"}`, admin.CodeBadRequest, "end_user_id"},
		{"connections.list", `{"token_id":"workspace","end_user_id":"u1"}`, admin.CodeBadRequest, "workspace-wide"},
		{"connections.list", `{"token_id":"per-user","extra":1}`, admin.CodeBadRequest, "extra"},
		{"connections.delete", `{"token_id":"per-user"}`, admin.CodeBadRequest, "missing field end_user_id"},
		{"connections.delete", `{"token_id":"workspace","end_user_id":"u1"}`, admin.CodeBadRequest, "workspace-wide"},
		{"connections.delete", `{"token_id":"per-user","end_user_id":"u1"}`, admin.CodeNotFound, "no connection for end user"},
		{"tokens.connect", `{"id":"per-user"}`, admin.CodeBadRequest, "per-end-user"},
		{"tokens.connect", `{"id":"workspace"}`, admin.CodeBadRequest, "ACTIONS_PUBLIC_URL"},
		{"tokens.connect", `{"id":"shop"}`, admin.CodeBadRequest, "not an oauth2 token"},
	}
	for _, tc := range tests {
		_, err := f.adm.Handle(t.Context(), tc.verb, []byte(tc.body))
		e := admin.AsError(err)
		if err == nil || e.Code != tc.code || !strings.Contains(e.Message, tc.says) {
			t.Errorf("%s %s: %v, want %s saying %q", tc.verb, tc.body, err, tc.code, tc.says)
		}
	}
	// An empty list is a list, not an error.
	reply, err := f.adm.Handle(t.Context(), "connections.list", []byte(`{"token_id":"per-user"}`))
	if l, ok := reply.(*admin.ConnectionList); err != nil || !ok || l.Connections == nil || len(l.Connections) != 0 || l.More {
		t.Errorf("empty list: %#v %v", reply, err)
	}
}
