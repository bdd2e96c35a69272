package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"customactions/admin"
	"customactions/auth"
	"customactions/events"
	"customactions/internal/netguard"
)

const (
	testKey    = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	rotatedKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
)

// adminFixture serves admin requests with encryption on, and runs a
// replica that uses the same sealer.
type adminFixture struct {
	h      *harness
	logBuf *syncBuffer
	as     *authServer
}

func newAdminFixture(t *testing.T, key string, old ...string) *adminFixture {
	h := newHarness(t, Config{})
	sealer, err := auth.NewSealer(key, old)
	if err != nil {
		t.Fatal(err)
	}
	client := netguard.Policy{AllowPrivate: true}.Client(4)
	fetcher := auth.NewFetcher(auth.WithHTTPClient(client))
	store := auth.NewStore(h.res.Tokens, sealer)
	mgr := auth.NewManager(h.res.Fetched, fetcher, auth.WithSealer(sealer))
	logger := slog.New(slog.NewJSONHandler(h.logs, nil))
	adm := admin.New(h.cfg.Prefix, store, mgr, fetcher, nil, logger)
	sub, err := adm.Subscribe(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	h.start(WithTokens(store, mgr))
	return &adminFixture{h: h, logBuf: h.logs, as: newAuthServer(t)}
}

func (f *adminFixture) request(t *testing.T, verb string, body any) (map[string]any, string) {
	t.Helper()
	data, ok := body.([]byte)
	if !ok {
		data, _ = json.Marshal(body)
	}
	msg, err := f.h.nc.Request("actions.admin."+verb, data, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", verb, err)
	}
	var out map[string]any
	if err := json.Unmarshal(msg.Data, &out); err != nil {
		t.Fatalf("%s reply %s: %v", verb, msg.Data, err)
	}
	return out, string(msg.Data)
}

func errCode(reply map[string]any) string {
	e, _ := reply["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func errMessage(reply map[string]any) string {
	e, _ := reply["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

func (f *adminFixture) httpToken() map[string]any {
	return map[string]any{"id": "shop", "name": "Shop", "type": "http", "description": "client credentials",
		"request": map[string]any{"method": "POST", "url": f.as.auth.URL + "/oauth/token",
			"headers": map[string]string{"X-Client": "abc-header-secret"}, "secret_fields": []string{"headers.X-Client"},
			"params": map[string]string{"grant_type": "client_credentials", "client_secret": clientSecret}},
		"token_path": "data.tokens[0].value", "expires_in_path": "expires_in", "prefix": "Bearer ", "header": "Authorization"}
}

func TestSaveRefusedWhenTestFails(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t, testKey)
	tests := []struct {
		name    string
		mutate  func(tok map[string]any)
		wantMsg string
	}{
		{"auth answers 401", func(tok map[string]any) {
			tok["request"].(map[string]any)["params"] = map[string]string{"client_secret": "wrong"}
		}, "answered 401"},
		{"wrong token_path", func(tok map[string]any) { tok["token_path"] = "access_token" }, `no "access_token" at the top level`},
		{"unreachable", func(tok map[string]any) { tok["request"].(map[string]any)["url"] = "http://127.0.0.1:1/token" }, "auth request to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := f.httpToken()
			tc.mutate(tok)
			reply, raw := f.request(t, "tokens.save", tok)
			if errCode(reply) != admin.CodeTestFailed || !strings.Contains(errMessage(reply), tc.wantMsg) {
				t.Errorf("save reply %s, want %s mentioning %q", raw, admin.CodeTestFailed, tc.wantMsg)
			}
			if _, err := f.h.res.Tokens.Get(context.Background(), "shop"); err == nil {
				t.Error("a token that failed its test was stored")
			}
			assertNoSecret(t, "reply", raw, clientSecret, "abc-header-secret")
		})
	}
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t, testKey)
	text := map[string]any{"id": "crm", "name": "CRM", "description": "read-only key", "type": "text",
		"value": "text-token-secret-5678", "prefix": "Bearer ", "header": "Authorization"}
	secrets := []string{"text-token-secret-5678", clientSecret, "abc-header-secret", "tok-1-secretvalue", "tok-2-secretvalue"}
	var replies []string
	keep := func(raw string) { replies = append(replies, raw) }

	reply, raw := f.request(t, "tokens.test", text)
	keep(raw)
	if reply["ok"] != true || reply["token_preview"] != "****5678" {
		t.Errorf("text test %s", raw)
	}
	reply, raw = f.request(t, "tokens.test", f.httpToken())
	keep(raw)
	if reply["ok"] != true || reply["http_status"] != float64(200) || reply["expires_in"] != float64(3600) ||
		!strings.HasPrefix(reply["token_preview"].(string), "****") || !strings.Contains(raw, `\"tokens\"`) {
		t.Errorf("http test %s", raw)
	}
	for _, tok := range []map[string]any{text, f.httpToken()} {
		reply, raw = f.request(t, "tokens.save", tok)
		keep(raw)
		if errCode(reply) != "" || reply["id"] != tok["id"] {
			t.Fatalf("save %s", raw)
		}
	}
	reply, raw = f.request(t, "tokens.get", map[string]string{"id": "crm"})
	keep(raw)
	if reply["value"] != "****5678" || reply["header"] != "Authorization" || reply["prefix"] != "Bearer " {
		t.Errorf("get crm %s", raw)
	}
	reply, raw = f.request(t, "tokens.get", map[string]string{"id": "shop"})
	keep(raw)
	params := reply["request"].(map[string]any)["params"].(map[string]any)
	if params["client_secret"] != "****-987" || reply["token_path"] != "data.tokens[0].value" {
		t.Errorf("get shop %s", raw)
	}
	// The tokens work: a trigger with each.
	f.h.trigger(&events.Trigger{ID: "use-http", ActionID: "a", Source: "inbox", TokenID: "shop", Request: events.Request{Method: "GET", URL: f.as.api.URL}})
	if r := f.h.result("use-http", 10*time.Second); r.Status != events.StatusSucceeded {
		t.Errorf("trigger with the saved http token: %+v %+v", r, r.Error)
	}
	reply, raw = f.request(t, "tokens.list", map[string]any{})
	keep(raw)
	list, _ := reply["tokens"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["id"] != "crm" || list[1].(map[string]any)["fetched"] == nil {
		t.Errorf("list %s", raw)
	}
	// Raw KV values are encrypted.
	for _, key := range []string{"crm", "shop"} {
		e, err := f.h.res.Tokens.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecret(t, "raw tokens bucket", string(e.Value()), secrets...)
	}
	e, err := f.h.res.Fetched.Get(context.Background(), "token.shop")
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "raw fetched-token bucket", string(e.Value()), secrets...)

	reply, raw = f.request(t, "tokens.delete", map[string]string{"id": "crm"})
	keep(raw)
	if reply["ok"] != true {
		t.Errorf("delete %s", raw)
	}
	reply, raw = f.request(t, "tokens.get", map[string]string{"id": "crm"})
	keep(raw)
	if errCode(reply) != admin.CodeNotFound {
		t.Errorf("get after delete %s", raw)
	}
	reply, raw = f.request(t, "tokens.delete", map[string]string{"id": "crm"})
	if errCode(reply) != admin.CodeNotFound {
		t.Errorf("second delete %s", raw)
	}
	for _, r := range replies {
		assertNoSecret(t, "admin reply", r, secrets...)
	}
	assertNoSecret(t, "process log", f.logBuf.String(), secrets...)
}

func TestAdminBadInput(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t, "")
	tests := []struct {
		verb     string
		body     any
		wantCode string
		wantMsg  string
	}{
		{"tokens.save", []byte(`{not json`), admin.CodeBadRequest, "request is not valid"},
		{"tokens.save", map[string]any{"id": "x", "type": "text"}, admin.CodeInvalidToken, "a text token needs a value"},
		{"tokens.save", map[string]any{"id": "x", "type": "http", "request": map[string]any{"method": "POST"}, "token_path": "a"}, admin.CodeInvalidToken, "missing field request.url"},
		{"tokens.save", map[string]any{"id": "x y", "type": "text", "value": "v"}, admin.CodeInvalidToken, "must match"},
		{"tokens.test", map[string]any{"id": "x", "type": "http", "request": map[string]any{"method": "POST", "url": "http://h/x", "params_encoding": "form"}, "token_path": "a["}, admin.CodeInvalidToken, "token_path: missing ]"},
		{"tokens.get", map[string]any{}, admin.CodeBadRequest, `id "" must match`},
		{"tokens.get", map[string]any{"id": "nope"}, admin.CodeNotFound, `token "nope" does not exist`},
		{"tokens.save", map[string]any{"id": "x", "type": "text", "value": "v1234", "params_encoding": "form"}, admin.CodeBadRequest, `unknown field "params_encoding"`},
		{"tokens.rename", map[string]any{}, admin.CodeUnknown, "unknown admin request"},
	}
	for _, tc := range tests {
		t.Run(tc.verb+" "+tc.wantCode, func(t *testing.T) {
			reply, raw := f.request(t, tc.verb, tc.body)
			if errCode(reply) != tc.wantCode || !strings.Contains(errMessage(reply), tc.wantMsg) {
				t.Errorf("reply %s, want %s with %q", raw, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestEditKeepsMaskedSecretsAndNewConfigDropsFetchedToken(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t, testKey)
	f.request(t, "tokens.save", f.httpToken())
	f.h.trigger(&events.Trigger{ID: "u1", ActionID: "a", Source: "inbox", TokenID: "shop", Request: events.Request{Method: "GET", URL: f.as.api.URL}})
	f.h.result("u1", 10*time.Second)
	// The UI sends back what get returned (masks included) with a new description.
	got, _ := f.request(t, "tokens.get", map[string]string{"id": "shop"})
	delete(got, "fetched")
	got["description"] = "edited"
	reply, raw := f.request(t, "tokens.save", got)
	if errCode(reply) != "" {
		t.Fatalf("save of the edited token: %s", raw)
	}
	stored, err := auth.NewStore(f.h.res.Tokens, mustSealer(t, testKey)).Get(context.Background(), "shop")
	if err != nil || stored.Request.Params["client_secret"].Reveal() != clientSecret || stored.Description != "edited" {
		t.Fatalf("stored after edit: %+v %v", stored, err)
	}
	if _, err := f.h.res.Fetched.Get(context.Background(), "token.shop"); err != nil {
		t.Errorf("an edit that kept the auth config dropped the fetched token: %v", err)
	}
	// A new auth config drops the cached token.
	tok := f.httpToken()
	tok["request"].(map[string]any)["headers"] = map[string]string{"X-Client": "another"}
	if reply, raw := f.request(t, "tokens.save", tok); errCode(reply) != "" {
		t.Fatalf("save: %s", raw)
	}
	if _, err := f.h.res.Fetched.Get(context.Background(), "token.shop"); err == nil {
		t.Error("a new auth config kept the old fetched token")
	}
}

func mustSealer(t *testing.T, key string, old ...string) *auth.Sealer {
	s, err := auth.NewSealer(key, old)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyRotationEndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Key") != "rotated-secret-0001" {
			w.WriteHeader(401)
		}
	}))
	t.Cleanup(api.Close)
	tok := &auth.Token{ID: "k", Type: "text", Value: "rotated-secret-0001", Header: "X-Key"}
	if _, err := auth.NewStore(h.res.Tokens, mustSealer(t, testKey)).Put(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// A replica with a new key and the old one among the old keys.
	sealer := mustSealer(t, rotatedKey, testKey)
	h.start(WithTokens(auth.NewStore(h.res.Tokens, sealer), auth.NewManager(h.res.Fetched, auth.NewFetcher(), auth.WithSealer(sealer))))
	h.trigger(&events.Trigger{ID: "rot", ActionID: "a", Source: "inbox", TokenID: "k", Request: events.Request{Method: "GET", URL: api.URL}})
	if r := h.result("rot", 10*time.Second); r.Status != events.StatusSucceeded {
		t.Errorf("token saved under the old key: %+v %+v", r, r.Error)
	}
	var buf bytes.Buffer
	fmt.Fprint(&buf, h.logs.String())
	assertNoSecret(t, "process log", buf.String(), "rotated-secret-0001")
}

func TestTestWithoutTokenPathShowsTheResponse(t *testing.T) {
	t.Parallel()
	f := newAdminFixture(t, "")
	tok := f.httpToken()
	delete(tok, "token_path")
	delete(tok, "expires_in_path")
	reply, raw := f.request(t, "tokens.test", tok)
	if reply["ok"] != true || reply["http_status"] != float64(200) || reply["token_preview"] != "" ||
		!strings.Contains(raw, `\"tokens\"`) || !strings.Contains(raw, "set token_path") {
		t.Errorf("test without token_path: %s", raw)
	}
	assertNoSecret(t, "reply", raw, clientSecret, "tok-1-secretvalue")
	// Saving still needs a token_path that finds the token.
	if reply, raw := f.request(t, "tokens.save", tok); errCode(reply) != admin.CodeInvalidToken {
		t.Errorf("save without token_path: %s", raw)
	}
}

func TestUnreadableTokenIsRejectedNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request) {})
	tok := &auth.Token{ID: "lost", Type: "text", Value: "value-under-a-lost-key", Header: "X-Key"}
	if _, err := auth.NewStore(h.res.Tokens, mustSealer(t, testKey)).Put(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	sealer := mustSealer(t, rotatedKey) // the old key was dropped
	h.start(WithTokens(auth.NewStore(h.res.Tokens, sealer), auth.NewManager(h.res.Fetched, auth.NewFetcher(), auth.WithSealer(sealer))))
	h.trigger(&events.Trigger{ID: "ul", ActionID: "a", Source: "inbox", TokenID: "lost", Request: events.Request{Method: "GET", URL: api.URL}})
	r := h.result("ul", 10*time.Second)
	if r.Status != events.StatusRejected || r.Error == nil || !strings.Contains(r.Error.Message, "ACTIONS_ENCRYPTION_OLD_KEYS") {
		t.Errorf("result %+v %+v, want rejected with a hint about the key", r, r.Error)
	}
	waitDrained(t, h)
	if len(api.Calls()) != 0 {
		t.Error("the action was called without its token")
	}
}
