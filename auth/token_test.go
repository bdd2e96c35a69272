package auth

import (
	"errors"
	"strings"
	"testing"
)

// A mask sent where a secret belongs is refused: an admin edit whose masks
// could not be matched to the stored secrets would otherwise save and send
// "****" as the secret.
func TestValidateRefusesMasks(t *testing.T) {
	text := func(v Secret) *Token { return &Token{ID: "t", Type: TypeText, Value: v} }
	http := func(headers, params map[string]Secret) *Token {
		return &Token{ID: "h", Type: TypeHTTP, TokenPath: "access_token",
			Request: &AuthRequest{Method: "POST", URL: "https://auth.example.com/token", Headers: headers, Params: params}}
	}
	tests := []struct {
		name      string
		tok       *Token
		wantField string // "" when valid
	}{
		{"text mask", text("****"), "value"},
		{"text mask with last four", text("****abcd"), "value"},
		{"text mask with fewer than four", text("****ab"), "value"},
		{"text value with stars inside", text("ab****cd"), ""},
		{"text value longer than a mask", text("****abcdefgh"), ""},
		{"header mask", http(map[string]Secret{"X-Api-Key": "****wxyz"}, nil), "request.headers.X-Api-Key"},
		{"param mask", http(nil, map[string]Secret{"client_id": "cid", "client_secret": "****"}), "request.params.client_secret"},
		{"http without masks", http(map[string]Secret{"X-Api-Key": "key-1234"}, map[string]Secret{"client_secret": "s3cr3t"}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.tok.Normalize()
			err := tc.tok.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Validate() = %v, want ErrInvalidToken", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantField) || !strings.Contains(msg, "value is the mask of a secret; send the real value") {
				t.Errorf("Validate() = %q, want it to name %s and ask for the real value", msg, tc.wantField)
			}
		})
	}
}

func TestMaskedFields(t *testing.T) {
	tok := &Token{Value: "****", Request: &AuthRequest{
		Headers: map[string]Secret{"X-B": "****wxyz", "X-A": "****", "X-C": "real-value"},
		Params:  map[string]Secret{"client_secret": "****1234", "client_id": "cid", "": "****"}}}
	got := strings.Join(tok.MaskedFields(), " ")
	want := "value request.headers.X-A request.headers.X-B request.params. request.params.client_secret"
	if got != want {
		t.Errorf("MaskedFields() = %q, want %q", got, want)
	}
	if f := (&Token{Value: "s3cr3t"}).MaskedFields(); len(f) != 0 {
		t.Errorf("MaskedFields() of a token without masks = %q", f)
	}
}
