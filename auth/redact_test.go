package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedactorMasks(t *testing.T) {
	r := NewRedactor("text-token-value-1234", "fetched-token-5678", "Bearer fetched-token-5678", "abc", "")
	tests := []struct {
		name, in, want string
	}{
		{"raw secret shows its mask", `{"echo":"text-token-value-1234"}`, `{"echo":"****1234"}`},
		{"header value echoed", "Authorization: Bearer fetched-token-5678", "Authorization: ****5678"},
		{"spaces as +", "k=" + url.QueryEscape("Bearer fetched-token-5678"), "k=****5678"},
		{"escaped secret shows its mask", `k=Bearer%20fetched\u002dtoken-5678`, "k=****5678"},
		{"hex shows ****", "k=" + hex.EncodeToString([]byte("fetched-token-5678")) + ";", "k=****;"},
		{"base64 of the header value", "x " + base64.StdEncoding.EncodeToString([]byte("Bearer fetched-token-5678")) + " y", "x **** y"},
		{"short secrets are left alone", "abc abc", "abc abc"},
		{"two secrets side by side", "text-token-value-1234fetched-token-5678", "****1234****5678"},
		{"nothing to mask", "plain text with % and \\ and & in it", "plain text with % and \\ and & in it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := string(r.Bytes([]byte(tc.in))); got != tc.want {
				t.Errorf("Bytes(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRedactorNothingToMask(t *testing.T) {
	var nilRedactor *Redactor
	in := []byte("text-token-value-1234")
	for _, r := range []*Redactor{nilRedactor, NewRedactor(), NewRedactor("abc", "")} {
		if got := r.String(string(in)); got != string(in) {
			t.Errorf("String = %q", got)
		}
		if got := r.Bytes(in); &got[0] != &in[0] {
			t.Error("Bytes copied a text without secrets")
		}
		if got, truncated := r.Cap(in, 4); string(got) != "text" || !truncated {
			t.Errorf("Cap = %q, %v", got, truncated)
		}
	}
	r := NewRedactor("text-token-value-1234")
	if got := r.Bytes([]byte("no secret here")); string(got) != "no secret here" {
		t.Errorf("Bytes = %q", got)
	}
}

func TestRedactorCap(t *testing.T) {
	const secret = "cap-secret-value-18"
	r := NewRedactor(secret)
	pad := strings.Repeat(".", 100)
	tests := []struct {
		name          string
		in            string
		n             int
		want          string
		wantTruncated bool
	}{
		{"shorter than the cap", pad + secret, 200, pad + "****e-18", false},
		{"secret before the cap", pad + secret + pad, 150, (pad + "****e-18" + pad)[:150-len(secret)+len("****e-18")], true},
		{"secret straddles the cap, read ahead", pad + secret + pad, 110, pad, true},
		{"encoded secret straddles the cap", pad + url.QueryEscape("a "+secret) + pad, 105, pad + "a+", true},
		{"no read-ahead: a trailing start of the secret is dropped", pad + secret[:12], 111, pad, true},
		{"no read-ahead: an escaped start", pad + "%63%61%70%2Ds", 112, pad, true},
		{"no read-ahead: an escape cut short", pad + "ca%7", 103, pad, true},
		{"no read-ahead: \\u cut short", pad + `ca\u007`, 106, pad, true},
		{"one character is kept", pad + "cX", 101, pad + "c", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, truncated := r.Cap([]byte(tc.in), tc.n)
			if string(got) != tc.want || truncated != tc.wantTruncated {
				t.Errorf("Cap(%q, %d) = %q, %v; want %q, %v", tc.in, tc.n, got, truncated, tc.want, tc.wantTruncated)
			}
			if len(got) > tc.n {
				t.Errorf("Cap returned %d bytes, more than %d", len(got), tc.n)
			}
		})
	}
}

// Every cut of a text that holds a secret, in any echoed form, leaves no
// piece of it, with or without read-ahead.
func TestRedactorCapEveryCut(t *testing.T) {
	for _, secret := range testSecrets {
		r := NewRedactor(secret)
		for name, form := range echoedForms(secret) {
			text := "before|" + form + "|after"
			for n := 0; n < len(text); n++ {
				for _, in := range []string{text, text[:min(len(text), n+1)]} {
					got, _ := r.Cap([]byte(in), n)
					if p := leak(string(got), secret); p != "" {
						t.Errorf("%s: Cap(%q, %d) = %q shows %q", name, in, n, got, p)
					}
				}
			}
		}
	}
}

// A secret written with some characters escaped and others not is found,
// whichever characters are escaped.
func TestRedactorMixedEscapes(t *testing.T) {
	secret := `Mix/ed+Se cr"et&`
	r := NewRedactor(secret)
	escapes := []func(byte) string{
		func(c byte) string { return string(c) },
		func(c byte) string { return fmt.Sprintf("%%%02X", c) },
		func(c byte) string { return fmt.Sprintf("%%%02x", c) },
		func(c byte) string { return fmt.Sprintf(`\u%04x`, c) },
		func(c byte) string { return fmt.Sprintf("&#%d;", c) },
		func(c byte) string { return fmt.Sprintf("&#x%X;", c) },
	}
	for seed := range 200 {
		var b strings.Builder
		for i := 0; i < len(secret); i++ {
			b.WriteString(escapes[(seed*7+i*i*13+i*seed)%len(escapes)](secret[i]))
		}
		in := "<" + b.String() + ">"
		if got := r.String(in); got != "<****>" && got != "<"+Mask(secret)+">" {
			t.Errorf("String(%q) = %q", in, got)
		}
	}
}

func FuzzRedactor(f *testing.F) {
	f.Add("s3cr3t/K+y=Va!ue~", "x", "y", uint8(0))
	f.Add("pässwörd-✓🔑", `{"a":"`, `"}`, uint8(7))
	f.Add("abcdEFGH12345678", "Basic ", "", uint8(20))
	f.Add("0 00 ", "0", "0", uint8('v'))    // a space as "+" in one half only
	f.Add("0000 ", "0", "0", uint8('\f'))   // a space as "+", query-escaped again
	f.Add(`"\\000`, "0", "0", uint8(0x88))  // a backslash that HTML leaves as it is
	f.Add(`\\"0\"`, "0", "0", uint8(0x88))  // backslashes HTML leaves before quotes it escapes
	f.Add("%000\x00", "0", "0", uint8('4')) // a secret that reads as URL escapes, in JSON in a query
	names := slices.Sorted(maps.Keys(echoedForms("secret")))
	f.Fuzz(func(t *testing.T, secret, before, after string, which uint8) {
		if utf8.RuneCountInString(secret) < 5 || !utf8.ValidString(secret) || strings.ContainsAny(secret, "|*") ||
			strings.ContainsAny(before+after, "|") || leak(before, secret) != "" || leak(after, secret) != "" {
			t.Skip()
		}
		name := names[int(which)%len(names)]
		if name == "query, one mask gap" && strings.ContainsAny(secret, "%\\&") {
			// Known limit: a secret with escape-like parts, half escaped,
			// reads as escapes of its own (fuzzing found `\\\\b\b`
			// as `%5C%5C%5C\b\b`).
			t.Skip()
		}
		form := echoedForms(secret)[name]
		in := before + "|" + form + "|" + after
		got := NewRedactor(secret).String(in)
		if p := leak(got, secret); p != "" {
			t.Errorf("String(%q) = %q shows %q", in, got, p)
		}
	})
}

// benchBody is about 1 MiB of JSON with each secret, raw and encoded, once
// in every 64 KiB.
func benchBody(secrets []string, escaped bool) []byte {
	var b bytes.Buffer
	for b.Len() < 1<<20 {
		for i := 0; i < 600 && b.Len() < 1<<20; i++ {
			fmt.Fprintf(&b, `{"id":%d,"name":"item number %d","tags":["alpha","beta"],"url":"https://example.com/items/%d"}`+"\n", i, i, i)
			if escaped && i%10 == 0 {
				b.WriteString(`{"note":"line\nbreak \"quoted\" caf\u00e9 a=1&amp;b=2 100%25"}` + "\n")
			}
		}
		for _, s := range secrets {
			fmt.Fprintf(&b, `{"echo":%q,"b64":%q,"q":%q}`+"\n", s, base64.StdEncoding.EncodeToString([]byte(s)), url.QueryEscape(s))
		}
	}
	return b.Bytes()
}

func BenchmarkRedactor(b *testing.B) {
	secrets := []string{"text-token-value-1234", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"}
	r := NewRedactor(secrets...)
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"1MiB-3-secrets-plain", benchBody(secrets, false)},
		{"1MiB-3-secrets-escaped", benchBody(secrets, true)},
		{"1MiB-no-secret-escaped", benchBody(nil, true)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				r.Bytes(bc.body)
			}
		})
	}
	b.Run("NewRedactor-3-secrets", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			NewRedactor(secrets...)
		}
	})
	b.Run("1KiB-header-echo", func(b *testing.B) {
		body := []byte(strings.Repeat(`{"ok":true,"headers":{"Accept":"*/*"}}`, 26) + `"Authorization":"Bearer text-token-value-1234"`)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			r.Bytes(body)
		}
	})
}

// TestRedactorTablesGrowWithPatterns: a Redactor of a short token has small
// tables (a replica keeps one per token and per end user's connection),
// and still finds its secrets; many long secrets get the full tables.
func TestRedactorTablesGrowWithPatterns(t *testing.T) {
	small := NewRedactor("short-token-1")
	if len(small.less) >= maxHashSize || len(small.head) != len(small.less) {
		t.Errorf("a one-secret Redactor has %d slots", len(small.less))
	}
	if got := small.String("x short-token-1 y"); strings.Contains(got, "short-token-1") {
		t.Errorf("small Redactor missed its secret: %q", got)
	}
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("secret-number-%02d-abcdefghijklmnop", i))
	}
	big := NewRedactor(many...)
	if len(big.less) != maxHashSize {
		t.Errorf("a 40-secret Redactor has %d slots, want %d", len(big.less), maxHashSize)
	}
	for _, s := range many {
		if got := big.String("<" + s + ">"); strings.Contains(got, s) {
			t.Fatalf("big Redactor missed %q: %q", s, got)
		}
	}
}

func TestHTTPTokenFieldsAreBounded(t *testing.T) {
	tok := &Token{ID: "h", Type: TypeHTTP, Header: "Authorization", TokenPath: "access_token",
		Request: &AuthRequest{Method: "POST", URL: "https://auth.example.com/token", Params: map[string]Secret{}}}
	for i := range MaxAuthFields + 1 {
		tok.Request.Params[fmt.Sprintf("p%d", i)] = "v"
	}
	tok.Normalize()
	if err := tok.Validate(); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Fatalf("65 params: %v", err)
	}
}
