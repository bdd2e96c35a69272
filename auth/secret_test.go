package auth

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"
)

// testSecrets have characters that every encoding changes (space, slash,
// plus, quote, <, &, non-ASCII), and none.
var testSecrets = []string{
	`s3cr3t/K+y=Va!ue~ "x"<&>;`,
	"abcdEFGH12345678wxyz",
	"pässwörd-✓🔑-geheim-42",
}

// echoedForms are the ways an endpoint echoes a secret back: URL, JSON,
// HTML, base64 and hex encodings, nested ones, and partial escaping.
func echoedForms(secret string) map[string]string {
	jsonAll := func(s string, format string) string {
		var b strings.Builder
		for _, r := range s {
			if r > 0xFFFF && format[0] == '\\' {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, format+format, r1, r2)
				continue
			}
			fmt.Fprintf(&b, format, r)
		}
		return b.String()
	}
	percentAll := func(s, format string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, format, s[i])
		}
		return b.String()
	}
	marshal := func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) }
	lowerHex := regexp.MustCompile(`%[0-9A-F]{2}`)
	lower := func(s string) string { return lowerHex.ReplaceAllStringFunc(s, strings.ToLower) }
	b64 := base64.StdEncoding.EncodeToString
	return map[string]string{
		"raw":                 secret,
		"query":               url.QueryEscape(secret),
		"query lower-case":    lower(url.QueryEscape(secret)),
		"path":                url.PathEscape(secret),
		"path lower-case":     lower(url.PathEscape(secret)),
		"every byte %XX":      percentAll(secret, "%%%02X"),
		"every byte %xx":      percentAll(secret, "%%%02x"),
		"double query":        url.QueryEscape(url.QueryEscape(secret)),
		"json":                marshal(secret),
		"json \\/":            strings.ReplaceAll(marshal(secret), "/", `\/`),
		"json \\uxxxx":        jsonAll(secret, `\u%04x`),
		"json \\uXXXX":        jsonAll(secret, `\u%04X`),
		"json in query":       url.QueryEscape(`{"k":"` + marshal(secret) + `"}`),
		"json of json":        marshal(`{"k":"` + marshal(secret) + `"}`),
		"html":                html.EscapeString(secret),
		"html &#NN;":          jsonAll(secret, "&#%d;"),
		"base64 std":          b64([]byte(secret)),
		"base64 url":          base64.URLEncoding.EncodeToString([]byte(secret)),
		"base64 raw std":      base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64 raw url":      base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"basic id:secret":     "Basic " + b64([]byte("client-id:"+secret)),
		"basic i:secret":      "Basic " + b64([]byte("c:"+secret)),
		"basic id1:secret":    "Basic " + b64([]byte("cid1:"+secret)),
		"basic secret:x":      "Basic " + b64([]byte(secret+":x")),
		"basic RFC 6749":      "Basic " + b64([]byte("client%20id:"+url.QueryEscape(secret))),
		"basic in json":       strings.ReplaceAll(b64([]byte("cid1:"+secret)), "/", `\/`),
		"basic in query":      url.QueryEscape(b64([]byte("client-id:" + secret))),
		"hex":                 hex.EncodeToString([]byte(secret)),
		"HEX":                 strings.ToUpper(hex.EncodeToString([]byte(secret))),
		"query, one mask gap": url.QueryEscape(secret[:len(secret)/2]) + secret[len(secret)/2:],
	}
}

// leak returns a piece of at least 5 bytes of secret that can be read in
// out, decoded the ways an endpoint encodes, or "" when there is none. The
// mask of a raw secret shows its last 4 characters, no more.
func leak(out, secret string) string {
	const n = 5
	// The last characters a mask shows must not join the text after it.
	out = strings.ReplaceAll(out, Mask(secret), "\x00")
	views := decodings(out)
	for i := 0; i+n <= len(secret); i++ {
		piece := secret[i : i+n]
		for _, v := range views {
			if strings.Contains(v, piece) {
				return piece
			}
		}
	}
	return ""
}

var (
	percentEsc = regexp.MustCompile(`%[0-9a-fA-F]{2}`)
	unicodeEsc = regexp.MustCompile(`(?:\\u[0-9a-fA-F]{4})+`)
	simpleEsc  = regexp.MustCompile(`\\["\\/]`)
	base64Run  = regexp.MustCompile(`[A-Za-z0-9+/_-]{6,}`)
	hexRun     = regexp.MustCompile(`[0-9a-fA-F]{10,}`)
)

// decodings returns s and what it reads as once URL, JSON and HTML escapes
// (up to three layers), base64 and hex are decoded.
func decodings(s string) []string {
	views := []string{s}
	cur := s
	for range 3 {
		next := percentEsc.ReplaceAllStringFunc(cur, func(m string) string { b, _ := hex.DecodeString(m[1:]); return string(b) })
		next = unicodeEsc.ReplaceAllStringFunc(next, func(m string) string {
			var v string
			if json.Unmarshal([]byte(`"`+m+`"`), &v) != nil {
				return m
			}
			return v
		})
		next = simpleEsc.ReplaceAllStringFunc(next, func(m string) string { return m[1:] })
		next = html.UnescapeString(next)
		views = append(views, next, strings.ReplaceAll(next, "+", " "))
		cur = next
	}
	var decoded []string
	for _, v := range views {
		for _, run := range base64Run.FindAllString(v, -1) {
			run = strings.NewReplacer("-", "+", "_", "/").Replace(run)
			for off := range 4 {
				r := run[off:]
				r = r[:len(r)-len(r)%4]
				if b, err := base64.StdEncoding.DecodeString(r); err == nil {
					decoded = append(decoded, string(b))
				}
			}
		}
		for _, run := range hexRun.FindAllString(v, -1) {
			for off := range 2 {
				r := run[off:]
				if b, err := hex.DecodeString(r[:len(r)-len(r)%2]); err == nil {
					decoded = append(decoded, string(b))
				}
			}
		}
	}
	return append(views, decoded...)
}

func TestRedactEchoedForms(t *testing.T) {
	for _, secret := range testSecrets {
		for name, form := range echoedForms(secret) {
			t.Run(name+"/"+secret, func(t *testing.T) {
				in := "before<" + form + ">after"
				if leak(in, secret) == "" {
					t.Fatalf("the test does not see the secret in %q", in)
				}
				got := Redact(in, "client-id", secret, "cid1")
				if p := leak(got, secret); p != "" {
					t.Errorf("%q shows %q of the secret", got, p)
				}
				if !strings.HasPrefix(got, "before<") || !strings.HasSuffix(got, ">after") {
					t.Errorf("the text around the secret changed: %q", got)
				}
			})
		}
	}
}

func TestRedactKeepsOrdinaryText(t *testing.T) {
	in := `{"error":"invalid_client","error_description":"Client authentication failed","url":"https:\/\/auth.example.com\/x?a=1&amp;b=%20"}`
	if got := Redact(in, "s3cr3t-value", "another-one"); got != in {
		t.Errorf("Redact changed text without secrets:\n got %s\nwant %s", got, in)
	}
	if got := Redact("abc is short", "abc"); got != "abc is short" {
		t.Errorf("a secret shorter than 4 characters was redacted: %q", got)
	}
	if got := Redact("raw s3cr3t-value-123 here", "s3cr3t-value-123"); got != "raw ****-123 here" {
		t.Errorf("a raw secret shows as %q, want its mask", got)
	}
}
