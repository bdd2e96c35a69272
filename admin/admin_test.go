package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"customactions/admin"
	"customactions/auth"
	"customactions/consumer"
	"customactions/internal/natstest"
	"customactions/internal/netguard"
)

// fixture is an admin Service over real buckets and an auth endpoint that
// hands out a new token per request.
type fixture struct {
	adm   *admin.Service
	store *auth.Store
	mgr   *auth.Manager
	res   *consumer.Resources
	auth  *httptest.Server
	calls atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	res, err := consumer.Setup(t.Context(), js, consumer.Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{res: res}
	f.auth = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.calls.Add(1)
		if r.FormValue("client_secret") != "s3cret-client" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"fetched-%d-abcdefgh","expires_in":3600}`, n)
	}))
	t.Cleanup(f.auth.Close)
	fetcher := auth.NewFetcher(auth.WithHTTPClient(netguard.Policy{AllowPrivate: true}.Client(2)))
	f.store = auth.NewStore(res.Tokens, nil)
	f.mgr = auth.NewManager(res.Fetched, fetcher, auth.WithConnections(res.Connections, 0))
	f.adm = admin.New("actions", f.store, f.mgr, fetcher, nil, nil)
	return f
}

func (f *fixture) httpToken(url string) string {
	return `{"id":"shop","type":"http","request":{"method":"POST","url":"` + url + `",
		"params":{"grant_type":"client_credentials","client_secret":"s3cret-client"}},"token_path":"access_token"}`
}

func code(err error) string {
	var e *admin.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestHandleRefusesWhatIsNotARequest(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, tc := range []struct {
		verb, body, code, msg string
	}{
		{"tokens.save", `{"id":"a","type":"text","value":"v1234","colour":"red"}`, admin.CodeBadRequest, `unknown field "colour"`},
		{"tokens.save", `{"id":"a","type":"text","value":"v1234"} {"id":"b"}`, admin.CodeBadRequest, "data after its JSON object"},
		{"tokens.save", `{"id":"a","type":"text","value":12}`, admin.CodeBadRequest, "request is not valid"},
		{"tokens.save", `[1,2]`, admin.CodeBadRequest, "request is not valid"},
		{"tokens.get", `{"id":"a","extra":"x"}`, admin.CodeBadRequest, `unknown field "extra"`},
		{"tokens.get", `{"id":"a b"}`, admin.CodeBadRequest, "must match"},
		{"tokens.list", `{"all":true}`, admin.CodeBadRequest, `unknown field "all"`},
		{"tokens.delete", `{"id":"nope"}`, admin.CodeNotFound, `token "nope" does not exist`},
		{"breakers.list", `{}`, admin.CodeInternal, "not enabled"},
		{"tokens.rename", `{}`, admin.CodeUnknown, "tokens.save"},
	} {
		t.Run(tc.verb+" "+tc.body, func(t *testing.T) {
			_, err := f.adm.Handle(ctx, tc.verb, []byte(tc.body))
			if code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Handle(%s, %s) = %v (code %q), want %s mentioning %q", tc.verb, tc.body, err, code(err), tc.code, tc.msg)
			}
		})
	}
}

func TestSaveAcceptsItsOwnReplyBack(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.adm.Handle(ctx, "tokens.save", []byte(f.httpToken(f.auth.URL))); err != nil {
		t.Fatal(err)
	}
	view, err := f.adm.TokenView(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	// An admin edits what tokens.get returned (masked secrets, fetched
	// info, updated_at) and saves it: the stored secrets are kept.
	view.Fetched = &admin.FetchedView{TokenPreview: "****efgh"}
	view.Description = "edited"
	data := mustJSON(t, view)
	if _, err := f.adm.Handle(ctx, "tokens.save", data); err != nil {
		t.Fatalf("saving the reply of tokens.get back: %v", err)
	}
	tok, _ := f.store.Get(ctx, "shop")
	if tok.Description != "edited" || tok.Request.Params["client_secret"].Reveal() != "s3cret-client" {
		t.Errorf("stored %+v, want the edit with the secret kept", tok)
	}
}

func TestSaveDropsTheFetchedTokenOnlyWhenTheAuthConfigChanges(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	tok := mustDecode(t, f.httpToken(f.auth.URL))
	if _, err := f.adm.SaveToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	fetched, _, err := f.mgr.Current(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	has := func() bool {
		_, err := f.res.Fetched.Get(ctx, "token.shop")
		return err == nil
	}
	if !has() {
		t.Fatal("no fetched token stored")
	}
	// Same auth configuration, new name: the fetched token stays.
	same := mustDecode(t, f.httpToken(f.auth.URL))
	same.Name = "Shop (renamed)"
	if _, err := f.adm.SaveToken(ctx, same); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatal("renaming a token dropped its fetched token")
	}
	// A new auth URL: the fetched token belongs to the old configuration.
	moved := mustDecode(t, f.httpToken(f.auth.URL+"/v2"))
	if _, err := f.adm.SaveToken(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if has() {
		t.Fatalf("the fetched token %s survived a new auth configuration", fetched.Token)
	}
}

func TestImportTokensSavesEachLikeSave(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	file := `[{"id":"crm","type":"text","value":"text-secret-1234"},` + f.httpToken(f.auth.URL) + `]`
	saved, err := f.adm.ImportTokens(ctx, []byte(file))
	if err != nil || len(saved) != 2 {
		t.Fatalf("import: %d saved, %v", len(saved), err)
	}
	// The second token fails its test request: the first is saved, the
	// error says which token and why.
	bad := strings.Replace(f.httpToken(f.auth.URL), "s3cret-client", "wrong", 1)
	bad = strings.Replace(bad, `"shop"`, `"shop2"`, 1)
	saved, err = f.adm.ImportTokens(ctx, []byte(`[{"id":"crm2","type":"text","value":"text-secret-5678"},`+bad+`]`))
	if len(saved) != 1 || code(err) != admin.CodeTestFailed || !strings.Contains(err.Error(), "token 2 of 2") {
		t.Fatalf("import with a bad second token: %d saved, %v", len(saved), err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows a secret: %v", err)
	}
	if _, err := f.store.Get(ctx, "shop2"); !errors.Is(err, auth.ErrTokenNotFound) {
		t.Errorf("a token that failed its test was stored: %v", err)
	}
	if _, err := f.adm.ImportTokens(ctx, []byte(`{"id":"x","type":"text","value":"abcd1234","oops":1}`)); code(err) != admin.CodeBadRequest {
		t.Errorf("an unknown field in a file: %v", err)
	}
}

func TestAsError(t *testing.T) {
	if admin.AsError(nil) != nil {
		t.Error("AsError(nil) is not nil")
	}
	e := admin.AsError(fmt.Errorf("save: %w", &admin.Error{Code: admin.CodeNotFound, Message: "m"}))
	if e.Code != admin.CodeNotFound || e.Message != "m" {
		t.Errorf("wrapped *Error: %+v", e)
	}
	if e := admin.AsError(context.DeadlineExceeded); e.Code != admin.CodeInternal {
		t.Errorf("plain error: %+v", e)
	}
}

// TestTestRequestKeepsMaskedSecrets: testing an edited token whose secrets
// came back masked tests it with the stored secrets, as a save would.
func TestTestRequestKeepsMaskedSecrets(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.adm.Handle(ctx, "tokens.save", []byte(f.httpToken(f.auth.URL))); err != nil {
		t.Fatal(err)
	}
	view, err := f.adm.TokenView(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	reply, err := f.adm.Handle(ctx, "tokens.test", mustJSON(t, view))
	if err != nil {
		t.Fatal(err)
	}
	if r := reply.(*admin.TestReply); !r.OK {
		t.Errorf("test of the stored token sent back masked: %+v", r)
	}
}
