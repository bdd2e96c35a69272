package auth

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// secretHeaders are the auth request headers whose values are secret by
// name (compared case-insensitively), beside any name that contains one of
// secretHeaderWords.
var secretHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "Api-Key",
	"X-Auth-Token", "X-Access-Token", "X-Client-Secret"}

var secretHeaderWords = []string{"secret", "token", "password", "key", "signature", "auth"}

// secretParamWords make an auth request param secret when its name contains
// one of them (case-insensitively); "refresh_token" and "client_secret"
// are covered by them.
var secretParamWords = []string{"secret", "password", "token", "key", "assertion", "signature", "code"}

// Prefixes of the entries of AuthRequest.SecretFields.
const (
	secretFieldHeader = "headers."
	secretFieldParam  = "params."
)

// SecretHeader reports whether an auth request header named name holds a
// secret by the documented rule: Authorization, Proxy-Authorization,
// Cookie, X-Api-Key, Api-Key, X-Auth-Token, X-Access-Token,
// X-Client-Secret, and any name containing "secret", "token", "password",
// "key", "signature" or "auth", all case-insensitively. Accept,
// Content-Type, User-Agent or X-Client-Id are not secret.
func SecretHeader(name string) bool {
	for _, h := range secretHeaders {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return containsAnyFold(name, secretHeaderWords)
}

// SecretParam reports whether an auth request param named name holds a
// secret by the documented rule: its name contains "secret", "password",
// "token", "key", "assertion", "signature" or "code", case-insensitively
// (client_secret, refresh_token, api_key, client_assertion, code...).
// grant_type, client_id, scope, audience, resource or username are not
// secret.
func SecretParam(name string) bool { return containsAnyFold(name, secretParamWords) }

func containsAnyFold(s string, words []string) bool {
	s = strings.ToLower(s)
	return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(s, w) })
}

// HeaderSecret reports whether the value of the header name is secret:
// by SecretHeader, or because SecretFields lists "headers.<name>" (header
// names compared case-insensitively).
func (r *AuthRequest) HeaderSecret(name string) bool {
	return SecretHeader(name) || slices.ContainsFunc(r.SecretFields, func(f string) bool {
		n, ok := strings.CutPrefix(f, secretFieldHeader)
		return ok && strings.EqualFold(n, name)
	})
}

// ParamSecret reports whether the value of the param name is secret: by
// SecretParam, or because SecretFields lists "params.<name>" (compared
// case-insensitively, so that a listed name is never shown by a change of
// case).
func (r *AuthRequest) ParamSecret(name string) bool {
	return SecretParam(name) || slices.ContainsFunc(r.SecretFields, func(f string) bool {
		n, ok := strings.CutPrefix(f, secretFieldParam)
		return ok && strings.EqualFold(n, name)
	})
}

// validateSecretFields checks that every entry of SecretFields is
// "headers.<Name>" or "params.<name>" and names a header or param of the
// request, so that a typo cannot leave the field it meant shown in clear.
func (r *AuthRequest) validateSecretFields() error {
	for _, f := range r.SecretFields {
		var found bool
		if n, ok := strings.CutPrefix(f, secretFieldHeader); ok {
			found = slices.ContainsFunc(mapKeys(r.Headers), func(k string) bool { return strings.EqualFold(k, n) })
		} else if n, ok := strings.CutPrefix(f, secretFieldParam); ok {
			found = slices.ContainsFunc(mapKeys(r.Params), func(k string) bool { return strings.EqualFold(k, n) })
		} else {
			return invalidf("request.secret_fields: %q must be \"headers.<Name>\" or \"params.<name>\"", f)
		}
		if !found {
			return invalidf("request.secret_fields: %q names no header or param of the request", f)
		}
	}
	return nil
}

func mapKeys(m map[string]Secret) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// secretValues returns the values of the secret headers and params of r.
func (r *AuthRequest) secretValues() []string {
	var out []string
	for k, v := range r.Headers {
		if r.HeaderSecret(k) {
			out = append(out, v.Reveal())
		}
	}
	for k, v := range r.Params {
		if r.ParamSecret(k) {
			out = append(out, v.Reveal())
		}
	}
	return out
}

// clearValues returns the values of the headers and params of r that are
// not secret, which admins see as they are.
func (r *AuthRequest) clearValues() []string {
	var out []string
	for k, v := range r.Headers {
		if !r.HeaderSecret(k) {
			out = append(out, v.Reveal())
		}
	}
	for k, v := range r.Params {
		if !r.ParamSecret(k) {
			out = append(out, v.Reveal())
		}
	}
	return out
}

// MarshalJSON encodes r with its secret header and param values masked
// and the others as they are, so an admin sees what to keep or change.
func (r AuthRequest) MarshalJSON() ([]byte, error) {
	type plain AuthRequest // without this method
	shown := func(m map[string]Secret, secret func(string) bool) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			if secret(k) {
				out[k] = Mask(v.Reveal())
			} else {
				out[k] = v.Reveal()
			}
		}
		return out
	}
	b, err := json.Marshal(struct {
		plain
		Headers map[string]string `json:"headers,omitempty"`
		Params  map[string]string `json:"params,omitempty"`
	}{plain(r), shown(r.Headers, r.HeaderSecret), shown(r.Params, r.ParamSecret)})
	if err != nil {
		return nil, fmt.Errorf("encode auth request: %w", err)
	}
	return b, nil
}
