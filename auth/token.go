package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"customactions/events"
)

// Token types.
const (
	TypeText   = "text"
	TypeHTTP   = "http"
	TypeOAuth2 = "oauth2"
)

// Params encodings of an auth request.
const (
	EncodingForm  = "form"
	EncodingJSON  = "json"
	EncodingQuery = "query"
)

// DefaultHeader carries the token when a token does not name a header.
const DefaultHeader = "Authorization"

// Token is a token as configured by a customer: a static text token or an
// HTTP Request token fetched from an auth endpoint.
type Token struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Type        string `json:"type"`
	// Value is the secret of a text token.
	Value  Secret `json:"value,omitempty"`
	Prefix string `json:"prefix"`
	Header string `json:"header"`
	// Request, TokenPath and ExpiresInPath describe an HTTP Request token.
	Request       *AuthRequest `json:"request,omitempty"`
	TokenPath     string       `json:"token_path,omitempty"`
	ExpiresInPath string       `json:"expires_in_path,omitempty"`
	// OAuth2 describes an oauth2 token (contract §10).
	OAuth2 *OAuth2 `json:"oauth2,omitempty"`
	// UpdatedAt is set by the store when the token is saved.
	UpdatedAt string `json:"updated_at,omitempty"`

	// hash caches ConfigHash and redact builds the Redactor once, for
	// tokens read from the store, which are shared and never changed; the
	// hot path then hashes nothing.
	hash   string
	redact func() *Redactor
}

// AuthRequest is the request that fetches an HTTP Request token. Its
// header and param values are all kept as Secrets (masked when printed or
// logged), but only those that HeaderSecret and ParamSecret name secret are
// masked in JSON and used for redaction; the others (Accept, grant_type,
// client_id) are shown as they are.
type AuthRequest struct {
	Method         string            `json:"method"`
	URL            string            `json:"url"`
	Headers        map[string]Secret `json:"headers,omitempty"`
	Params         map[string]Secret `json:"params,omitempty"`
	ParamsEncoding string            `json:"params_encoding,omitempty"`
	// SecretFields marks more headers and params secret than the rule of
	// SecretHeader and SecretParam: "headers.<Name>", "params.<name>".
	SecretFields []string `json:"secret_fields,omitempty"`
}

// ErrInvalidToken is wrapped by every error of Token.Validate.
var ErrInvalidToken = errors.New("invalid token")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

var methodsWithBody = []string{"POST", "PUT", "PATCH", "DELETE"}
var authMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// Normalize fills the documented defaults: header "Authorization", an
// upper-case method, and the params encoding (form for methods with a body,
// query for GET and HEAD).
func (t *Token) Normalize() {
	t.Type = strings.ToLower(strings.TrimSpace(t.Type))
	if t.Header == "" {
		t.Header = DefaultHeader
	}
	if t.Name == "" {
		t.Name = t.ID
	}
	if r := t.Request; r != nil {
		r.Method = strings.ToUpper(strings.TrimSpace(r.Method))
		if r.ParamsEncoding == "" {
			if slices.Contains(methodsWithBody, r.Method) {
				r.ParamsEncoding = EncodingForm
			} else {
				r.ParamsEncoding = EncodingQuery
			}
		}
	}
	if t.OAuth2 != nil {
		t.OAuth2.normalize()
	}
}

// Validate reports what is wrong with the token, in an error that wraps
// ErrInvalidToken and names the field. Call Normalize first.
//
// A secret whose value is a mask (IsMask, as "****wxyz") is refused: an
// edit that sends back masks must have them replaced by the stored secrets
// first, so a mask left means there was no stored secret to take, and the
// mask would otherwise be saved and sent as the secret.
func (t *Token) Validate() error {
	if !events.ValidID(t.ID) {
		return invalidf("id %q must match ^[A-Za-z0-9_-]{1,128}$", t.ID)
	}
	if !events.ValidHeaderName(t.Header) {
		return invalidf("header %q is not a valid HTTP header name", t.Header)
	}
	if strings.ContainsAny(t.Prefix, "\r\n") {
		return invalidf("prefix must not contain a line break")
	}
	if masked := t.MaskedFields(); len(masked) > 0 {
		return invalidf("%s: value is the mask of a secret; send the real value", strings.Join(masked, ", "))
	}
	switch t.Type {
	case TypeText:
		if t.Value == "" {
			return invalidf("a text token needs a value")
		}
		if strings.ContainsAny(string(t.Value), "\r\n") {
			return invalidf("value must not contain a line break")
		}
		if t.Request != nil || t.TokenPath != "" || t.OAuth2 != nil {
			return invalidf("a text token has no request, token_path or oauth2; use type \"http\" or \"oauth2\"")
		}
		return nil
	case TypeHTTP:
		if t.OAuth2 != nil {
			return invalidf("an http token has no oauth2 object; use type \"oauth2\"")
		}
		return t.validateHTTP()
	case TypeOAuth2:
		return t.validateOAuth2()
	case "":
		return invalidf("missing field type (\"text\", \"http\" or \"oauth2\")")
	default:
		return invalidf("type %q must be \"text\", \"http\" or \"oauth2\"", t.Type)
	}
}

// MaxAuthFields bounds the headers and the params of an HTTP token's auth
// request (each may be a secret that every Redactor of the token looks for).
const MaxAuthFields = 64

func (t *Token) validateHTTP() error {
	r := t.Request
	if r == nil {
		return invalidf("an http token needs a request (method, url, headers, params)")
	}
	if t.Value != "" {
		return invalidf("an http token has no value; its token is fetched from request.url")
	}
	if !slices.Contains(authMethods, r.Method) {
		return invalidf("request.method %q must be one of %s", r.Method, strings.Join(authMethods, ", "))
	}
	if r.URL == "" {
		return invalidf("missing field request.url")
	}
	if _, err := events.ParseHTTPURL(r.URL); err != nil {
		return invalidf("request.url %v", err)
	}
	if len(r.Headers) > MaxAuthFields || len(r.Params) > MaxAuthFields {
		return invalidf("request: %d headers and %d params; at most %d of each", len(r.Headers), len(r.Params), MaxAuthFields)
	}
	for name, v := range r.Headers {
		if !events.ValidHeaderName(name) {
			return invalidf("request.headers: %q is not a valid HTTP header name", name)
		}
		if strings.ContainsAny(string(v), "\r\n") {
			return invalidf("request.headers: the value of %q must not contain a line break", name)
		}
	}
	for name := range r.Params {
		if name == "" {
			return invalidf("request.params: a parameter needs a name")
		}
	}
	if err := r.validateSecretFields(); err != nil {
		return err
	}
	switch r.ParamsEncoding {
	case EncodingForm, EncodingJSON, EncodingQuery:
	default:
		return invalidf("request.params_encoding %q must be form, json or query", r.ParamsEncoding)
	}
	if (r.Method == "GET" || r.Method == "HEAD") && r.ParamsEncoding != EncodingQuery && len(r.Params) > 0 {
		return invalidf("request.params_encoding %q needs a body; a %s request sends params as query", r.ParamsEncoding, r.Method)
	}
	if t.TokenPath == "" {
		return invalidf("missing field token_path (a JSON path such as access_token, or header:<Name>)")
	}
	if _, err := ParsePath(t.TokenPath); err != nil {
		return invalidf("token_path: %v", err)
	}
	if t.ExpiresInPath != "" {
		if _, err := ParsePath(t.ExpiresInPath); err != nil {
			return invalidf("expires_in_path: %v", err)
		}
	}
	return nil
}

// MaskedFields returns the fields whose values are masks (IsMask), secret
// or not (a mask is never a real value), sorted: "value", "oauth2.client_secret", "oauth2.refresh_token",
// "request.headers.<Name>", "request.params.<name>".
func (t *Token) MaskedFields() []string {
	var out []string
	if IsMask(string(t.Value)) {
		out = append(out, "value")
	}
	if o := t.OAuth2; o != nil {
		if IsMask(string(o.ClientSecret)) {
			out = append(out, "oauth2.client_secret")
		}
		if IsMask(string(o.RefreshToken)) {
			out = append(out, "oauth2.refresh_token")
		}
	}
	if t.Request != nil {
		for _, m := range []struct {
			field  string
			values map[string]Secret
		}{{"request.headers.", t.Request.Headers}, {"request.params.", t.Request.Params}} {
			var names []string
			for name, v := range m.values {
				if IsMask(string(v)) {
					names = append(names, m.field+name)
				}
			}
			slices.Sort(names)
			out = append(out, names...)
		}
	}
	return out
}

// Secrets returns every secret value of the token, for redaction: of an
// HTTP token's auth request, only the header and param values that
// HeaderSecret and ParamSecret name secret, so that values shown in clear
// (Accept, grant_type) are not masked where they are echoed.
func (t *Token) Secrets() []string {
	out := []string{string(t.Value)}
	if t.OAuth2 != nil {
		out = append(out, string(t.OAuth2.ClientSecret), string(t.OAuth2.RefreshToken))
	}
	if t.Request != nil {
		out = append(out, t.Request.secretValues()...)
	}
	return out
}

// shared prepares t to be shared by the store's readers: its config hash
// computed, its Redactor built on first use.
func (t *Token) shared() {
	t.hash = t.computeHash()
	secrets := t.responseSecrets()
	t.redact = sync.OnceValue(func() *Redactor { return NewRedactor(secrets...) })
}

// responseSecrets are the secrets of t masked in what an action sends
// back: a text token's value, an oauth2 token's client secret and refresh
// token. Not an HTTP token's auth request header and param values: many
// are not secret (Accept, grant_type), and masking them everywhere would
// garble responses; its fetched token is masked instead.
func (t *Token) responseSecrets() []string {
	out := []string{t.Value.Reveal()}
	if t.OAuth2 != nil {
		out = append(out, t.OAuth2.ClientSecret.Reveal(), t.OAuth2.RefreshToken.Reveal())
	}
	return out
}

// ConfigHash identifies the auth configuration of an HTTP token: a fetched
// token is only used with the configuration that fetched it.
func (t *Token) ConfigHash() string {
	if t.hash != "" {
		return t.hash
	}
	return t.computeHash()
}

func (t *Token) computeHash() string {
	if t.OAuth2 != nil {
		return t.OAuth2.hash()
	}
	if t.Request == nil {
		return ""
	}
	h := sha256.New()
	r := t.Request
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", r.Method, r.URL, r.ParamsEncoding, t.TokenPath, t.ExpiresInPath)
	for _, m := range []map[string]Secret{r.Headers, r.Params} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%s\x00", k, m[k].Reveal())
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
