package auth

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Secret is a value that must never be shown: a text token's value, a
// fetched token, a secret auth parameter or auth header value. Printing,
// logging or JSON-encoding it yields its mask; Reveal returns the value
// itself, for the one place that sends it. An auth request keeps all its
// header and param values as Secrets, and AuthRequest.MarshalJSON shows
// the ones that are not secret (SecretHeader, SecretParam, secret_fields).
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String returns the mask of s.
func (s Secret) String() string { return Mask(string(s)) }

// GoString returns the mask of s, so %#v does not leak it either.
func (s Secret) GoString() string { return Mask(string(s)) }

// Format writes the mask of s for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Mask(string(s))) }

// LogValue returns the mask of s for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Mask(string(s))) }

// MarshalJSON encodes the mask of s.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Mask(string(s))) }

// UnmarshalJSON decodes a plain JSON string, as sent in an admin request.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("a secret must be a JSON string")
	}
	*s = Secret(v)
	return nil
}

// maskPrefix starts every mask.
const maskPrefix = "****"

// Mask returns "****" followed by at most the last 4 characters of v: none
// when v is shorter than 12 characters, so a short secret is not half shown.
// An empty v stays empty.
func Mask(v string) string {
	if v == "" {
		return ""
	}
	if len(v) < 12 {
		return maskPrefix
	}
	return maskPrefix + v[len(v)-4:]
}

// IsMask reports whether v looks like the output of Mask; an admin that
// edits a token sends the masks back for the secrets it did not change.
func IsMask(v string) bool { return strings.HasPrefix(v, maskPrefix) && len(v) <= len(maskPrefix)+4 }

// Redact returns s with the given secrets masked, in every form a
// Redactor recognizes. Secrets shorter than 4 characters are left alone:
// replacing them would mangle the text without protecting anything. To
// redact more than one text, make a Redactor once.
func Redact(s string, secrets ...string) string {
	return NewRedactor(secrets...).String(s)
}
