package admin_test

import (
	"encoding/json"
	"strings"
	"testing"

	"customactions/admin"
)

// secretFieldsToken has values that are secret (client_secret, tenant by
// secret_fields) and values that are not (Accept, grant_type, client_id).
func (f *fixture) secretFieldsToken() string {
	return `{"id":"shop","type":"http","request":{"method":"POST","url":"` + f.auth.URL + `",
		"headers":{"Accept":"application/json"},
		"params":{"grant_type":"client_credentials","client_id":"client-42","client_secret":"s3cret-client","tenant":"tenant-abcdef-9999"},
		"secret_fields":["params.tenant"]},"token_path":"access_token"}`
}

// request decodes the request of a reply as a client sees it.
func request(t *testing.T, reply any) (headers, params map[string]string) {
	t.Helper()
	var v struct {
		Request struct {
			Headers map[string]string `json:"headers"`
			Params  map[string]string `json:"params"`
		} `json:"request"`
	}
	if err := json.Unmarshal(mustJSON(t, reply), &v); err != nil {
		t.Fatal(err)
	}
	return v.Request.Headers, v.Request.Params
}

// tokens.save, tokens.get and tokens.list show the values that are not
// secret as they are and mask the secret ones; an edit that sends the reply
// back keeps the masked secrets and saves the clear values as sent.
func TestRepliesShowValuesThatAreNotSecret(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	saved, err := f.adm.Handle(ctx, "tokens.save", []byte(f.secretFieldsToken()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.adm.Handle(ctx, "tokens.get", []byte(`{"id":"shop"}`))
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.adm.Handle(ctx, "tokens.list", nil)
	if err != nil {
		t.Fatal(err)
	}
	var views struct {
		Tokens []json.RawMessage `json:"tokens"`
	}
	if err := json.Unmarshal(mustJSON(t, list), &views); err != nil || len(views.Tokens) != 1 {
		t.Fatalf("tokens.list = %s, %v", mustJSON(t, list), err)
	}
	for name, reply := range map[string]any{"tokens.save": saved, "tokens.get": got, "tokens.list": views.Tokens[0]} {
		headers, params := request(t, reply)
		if headers["Accept"] != "application/json" || params["grant_type"] != "client_credentials" || params["client_id"] != "client-42" {
			t.Errorf("%s shows headers %v params %v, want Accept, grant_type and client_id in clear", name, headers, params)
		}
		if params["client_secret"] != "****ient" || params["tenant"] != "****9999" {
			t.Errorf("%s shows params %v, want client_secret and tenant masked", name, params)
		}
	}

	// The edit changes a value that is not secret without retyping the
	// secrets, and saves.
	edit := strings.Replace(string(mustJSON(t, got)), `"client-42"`, `"client-43"`, 1)
	if _, err := f.adm.Handle(ctx, "tokens.save", []byte(edit)); err != nil {
		t.Fatalf("saving an edit of the reply: %v", err)
	}
	tok, _ := f.store.Get(ctx, "shop")
	p := tok.Request.Params
	if p["client_id"].Reveal() != "client-43" || p["client_secret"].Reveal() != "s3cret-client" || p["tenant"].Reveal() != "tenant-abcdef-9999" {
		t.Errorf("stored params client_id %q client_secret %q tenant %q, want the edit with the secrets kept",
			p["client_id"].Reveal(), p["client_secret"].Reveal(), p["tenant"].Reveal())
	}
}

// A mask sent for a value that is shown in clear is not taken for the
// stored value: it is what the admin sent, and a mask is refused.
func TestMaskOfAValueShownInClearIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.adm.Handle(ctx, "tokens.save", []byte(f.secretFieldsToken())); err != nil {
		t.Fatal(err)
	}
	edit := strings.Replace(f.secretFieldsToken(), `"client-42"`, `"****"`, 1)
	edit = strings.Replace(edit, `"s3cret-client"`, `"****ient"`, 1)
	_, err := f.adm.Handle(ctx, "tokens.save", []byte(edit))
	if code(err) != admin.CodeInvalidToken || !strings.Contains(err.Error(), "request.params.client_id") ||
		strings.Contains(err.Error(), "request.params.client_secret") {
		t.Errorf("save = %v, want %s naming client_id only (client_secret's mask is the stored secret)", err, admin.CodeInvalidToken)
	}
}

// tokens.test of the stored token sent back shows the auth response's
// Content-Type (equal to the Accept header sent) in clear.
func TestTestReplyShowsContentTypeInClear(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.adm.Handle(ctx, "tokens.save", []byte(f.secretFieldsToken())); err != nil {
		t.Fatal(err)
	}
	view, err := f.adm.Handle(ctx, "tokens.get", []byte(`{"id":"shop"}`))
	if err != nil {
		t.Fatal(err)
	}
	reply, err := f.adm.Handle(ctx, "tokens.test", mustJSON(t, view))
	if err != nil {
		t.Fatal(err)
	}
	r := reply.(*admin.TestReply)
	if !r.OK || r.Response == nil || r.Response.Headers["Content-Type"] != "application/json" {
		t.Errorf("tokens.test = %s, want ok with Content-Type application/json", mustJSON(t, r))
	}
}
