package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestSecretHeaderAndParam(t *testing.T) {
	headers := []struct {
		name string
		want bool
	}{
		{"Authorization", true}, {"proxy-authorization", true}, {"Cookie", true}, {"X-Api-Key", true},
		{"Api-Key", true}, {"X-Auth-Token", true}, {"X-Access-Token", true}, {"X-Client-Secret", true},
		{"X-Tenant-Secret", true}, {"X-Session-TOKEN", true}, {"X-Password", true}, {"X-Hub-Signature", true},
		{"X-Custom-Auth", true}, {"Ocp-Apim-Subscription-Key", true},
		{"Accept", false}, {"Content-Type", false}, {"User-Agent", false}, {"X-Client-Id", false},
		{"X-Custom", false}, {"Cache-Control", false},
	}
	for _, tc := range headers {
		if got := SecretHeader(tc.name); got != tc.want {
			t.Errorf("SecretHeader(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	params := []struct {
		name string
		want bool
	}{
		{"client_secret", true}, {"refresh_token", true}, {"password", true}, {"api_key", true},
		{"client_assertion", true}, {"signature", true}, {"code", true}, {"code_verifier", true},
		{"Token", true}, {"X_SECRET", true}, {"tenant_key", true},
		{"grant_type", false}, {"client_id", false}, {"scope", false}, {"audience", false},
		{"resource", false}, {"username", false}, {"tenant", false},
	}
	for _, tc := range params {
		if got := SecretParam(tc.name); got != tc.want {
			t.Errorf("SecretParam(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// editToken is an HTTP token with secret and non-secret values, and a
// secret_fields override for two names the rule does not cover.
func editToken() *Token {
	return &Token{ID: "shop", Type: TypeHTTP, TokenPath: "access_token",
		Request: &AuthRequest{Method: "POST", URL: "https://auth.example.com/token",
			Headers: map[string]Secret{"Accept": "application/json", "X-Client-Id": "client-42",
				"X-Api-Key": "header-key-123456", "X-Custom": "custom-value-7890"},
			Params: map[string]Secret{"grant_type": "client_credentials", "client_id": "client-42",
				"scope": "orders:read", "client_secret": "s3cret-client-0001", "tenant": "tenant-abcdef-9999"},
			SecretFields: []string{"headers.x-custom", "params.tenant"}}}
}

// The JSON of a token (every admin reply) shows the values that are not
// secret as they are and masks the secret ones.
func TestAuthRequestJSONMasksOnlySecretValues(t *testing.T) {
	tok := editToken()
	data, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Request struct {
			Headers      map[string]string `json:"headers"`
			Params       map[string]string `json:"params"`
			SecretFields []string          `json:"secret_fields"`
			Method       string            `json:"method"`
		} `json:"request"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"headers.Accept": "application/json", "headers.X-Client-Id": "client-42",
		"headers.X-Api-Key": "****3456", "headers.X-Custom": "****7890",
		"params.grant_type": "client_credentials", "params.client_id": "client-42", "params.scope": "orders:read",
		"params.client_secret": "****0001", "params.tenant": "****9999",
	}
	for field, w := range want {
		kind, name, _ := strings.Cut(field, ".")
		m := got.Request.Headers
		if kind == "params" {
			m = got.Request.Params
		}
		if m[name] != w {
			t.Errorf("%s = %q, want %q", field, m[name], w)
		}
	}
	if got.Request.Method != "POST" || !slices.Equal(got.Request.SecretFields, tok.Request.SecretFields) {
		t.Errorf("request %s, want method and secret_fields kept", data)
	}
	// A value is still a Secret in Go: printing it shows the mask.
	if s := fmt.Sprint(tok.Request.Params["grant_type"]); s != "****"+"ials" {
		t.Errorf("fmt of a param = %q, want its mask", s)
	}
}

func TestSecretsAreOnlyTheSecretValues(t *testing.T) {
	got := editToken().Secrets()
	for _, secret := range []string{"header-key-123456", "custom-value-7890", "s3cret-client-0001", "tenant-abcdef-9999"} {
		if !slices.Contains(got, secret) {
			t.Errorf("Secrets() lacks %q: %q", secret, got)
		}
	}
	for _, clear := range []string{"application/json", "client-42", "client_credentials", "orders:read"} {
		if slices.Contains(got, clear) {
			t.Errorf("Secrets() holds %q, which is not secret", clear)
		}
	}
}

func TestValidateSecretFields(t *testing.T) {
	tests := []struct {
		name    string
		fields  []string
		wantErr string
	}{
		{"none", nil, ""},
		{"a header and a param", []string{"headers.X-Custom", "params.tenant"}, ""},
		{"header name in another case", []string{"headers.x-custom"}, ""},
		{"no prefix", []string{"tenant"}, `"tenant" must be "headers.<Name>" or "params.<name>"`},
		{"request prefix", []string{"request.params.tenant"}, `must be "headers.<Name>" or "params.<name>"`},
		{"unknown param", []string{"params.tennant"}, `"params.tennant" names no header or param`},
		{"unknown header", []string{"headers.X-Other"}, `"headers.X-Other" names no header or param`},
		{"empty name", []string{"params."}, `names no header or param`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := editToken()
			tok.Request.SecretFields = tc.fields
			tok.Normalize()
			err := tok.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate() = %v, want ErrInvalidToken with %q", err, tc.wantErr)
			}
		})
	}
}

// A test request whose auth endpoint answers Content-Type
// application/json and echoes grant_type and client_id shows them as they
// are; the client secret and the fetched token stay masked.
func TestTestResultShowsValuesThatAreNotSecret(t *testing.T) {
	const secret, fetched = "s3cret-client-0001", "fetched-token-abcdefgh"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", string(raw))
		fmt.Fprintf(w, `{"access_token":%q,"grant_type":%q,"client_id":%q,"echo":%q}`,
			fetched, r.Header.Get("X-Grant"), r.Header.Get("X-Client-Id"), string(raw))
	}))
	t.Cleanup(srv.Close)
	tok := &Token{ID: "shop", Type: TypeHTTP, TokenPath: "access_token",
		Request: &AuthRequest{Method: "POST", URL: srv.URL,
			Headers: map[string]Secret{"Accept": "application/json", "X-Grant": "client_credentials", "X-Client-Id": "client-id-0042-long"},
			Params:  map[string]Secret{"grant_type": "client_credentials", "client_secret": secret}}}
	tok.Normalize()
	if err := tok.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := NewFetcher().Test(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Headers["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type shown as %q, want application/json", ct)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
		t.Fatalf("body %q: %v", res.Body, err)
	}
	if body["grant_type"] != "client_credentials" || body["client_id"] != "client-id-0042-long" {
		t.Errorf("body %s, want grant_type and client_id in clear", res.Body)
	}
	if !strings.Contains(res.Headers["X-Echo"], "grant_type=client_credentials") {
		t.Errorf("X-Echo %q, want grant_type in clear", res.Headers["X-Echo"])
	}
	for where, shown := range map[string]string{"body": res.Body, "X-Echo": res.Headers["X-Echo"]} {
		if strings.Contains(shown, secret) || strings.Contains(shown, fetched) {
			t.Errorf("%s shows a secret: %s", where, shown)
		}
	}
	if !strings.Contains(res.Headers["X-Echo"], "client_secret=****0001") {
		t.Errorf("X-Echo %q, want the client secret masked", res.Headers["X-Echo"])
	}
}

// The store keeps secret_fields, so a token read back masks the same
// values as the one saved.
func TestStoreKeepsSecretFields(t *testing.T) {
	rs := newReplicaSet(t)
	tok := editToken()
	tok.Normalize()
	rs.put(t, tok)
	got, err := NewStore(rs.tokens, nil).Get(t.Context(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Request.SecretFields, tok.Request.SecretFields) ||
		!got.Request.ParamSecret("tenant") || !got.Request.HeaderSecret("X-Custom") {
		t.Errorf("stored secret_fields %q, want %q", got.Request.SecretFields, tok.Request.SecretFields)
	}
}
