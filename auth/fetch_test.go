package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

const (
	echoClientID = "cid-Q7R8S9"
	echoSecret   = `Xy9/Zq+W=al ue"v"<&>`
	echoAPIKey   = "K3Y-4P1-H34D3R"
	echoFetched  = "f3tch3d/T0k3n+V4lu3=="
)

// echoToken is an HTTP token whose auth endpoint is handler.
func echoToken(t *testing.T, handler http.HandlerFunc) *Token {
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	tok := &Token{ID: "echo", Type: TypeHTTP, TokenPath: "access_token",
		Request: &AuthRequest{Method: "POST", URL: srv.URL + "/token",
			Headers: map[string]Secret{"X-Api-Key": echoAPIKey},
			Params:  map[string]Secret{"client_id": echoClientID, "client_secret": echoSecret}}}
	tok.Normalize()
	if err := tok.Validate(); err != nil {
		t.Fatal(err)
	}
	return tok
}

// echoes writes the secrets of the request back in the encodings an
// endpoint uses, one per line.
func echoes(r *http.Request) string {
	raw, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(raw))
	var lines []string
	for _, sec := range []string{form.Get("client_secret"), r.Header.Get("X-Api-Key")} {
		forms := echoedForms(sec)
		names := make([]string, 0, len(forms))
		for name := range forms {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			lines = append(lines, name+": "+forms[name])
		}
	}
	basic := base64.StdEncoding.EncodeToString([]byte(form.Get("client_id") + ":" + form.Get("client_secret")))
	lines = append(lines, "body: "+string(raw), "authorization: Basic "+basic)
	return strings.Join(lines, "\n")
}

func assertNoLeak(t *testing.T, where, shown string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if p := leak(shown, sec); p != "" {
			t.Errorf("%s shows %q of secret %q:\n%s", where, p, sec, shown)
		}
	}
}

func TestAuthErrorMasksEchoedSecrets(t *testing.T) {
	tok := echoToken(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, echoes(r))
	})
	_, err := NewFetcher().Fetch(t.Context(), tok)
	var aerr *AuthError
	if !errors.As(err, &aerr) || aerr.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want an *AuthError with 401", err)
	}
	// client_id is not a secret (SecretParam): it is shown as sent.
	assertNoLeak(t, "AuthError.Body", aerr.Body, echoSecret, echoAPIKey)
	if !strings.Contains(aerr.Body, "client_id="+echoClientID) {
		t.Errorf("the body masks client_id, which is not a secret: %s", aerr.Body)
	}
	if !strings.Contains(aerr.Body, "hex: ") || !strings.Contains(aerr.Body, "base64 std: ") {
		t.Errorf("the body lost its structure: %s", aerr.Body)
	}
}

func TestTestResultMasksEchoedSecrets(t *testing.T) {
	tok := echoToken(t, func(w http.ResponseWriter, r *http.Request) {
		e := echoes(r)
		for i, line := range strings.Split(e, "\n") {
			if !strings.ContainsAny(line, "\r\x00") && !strings.ContainsRune(line, '✓') {
				w.Header().Set(fmt.Sprintf("X-Echo-%02d", i), line)
			}
		}
		w.Header().Set("X-Token-Echo", base64.StdEncoding.EncodeToString([]byte("Bearer "+echoFetched)))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"echo":%q,"token_b64":%q,"token_url":%q}`,
			echoFetched, e, base64.StdEncoding.EncodeToString([]byte(echoFetched)), url.QueryEscape(echoFetched))
	})
	res, err := NewFetcher().Test(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if res.Token.Reveal() != echoFetched {
		t.Fatalf("token %q, path error %v", res.Token.Reveal(), res.PathErr)
	}
	assertNoLeak(t, "TestResult.Body", res.Body, echoSecret, echoAPIKey, echoFetched)
	for k, v := range res.Headers {
		assertNoLeak(t, "TestResult.Headers["+k+"]", v, echoSecret, echoAPIKey, echoFetched)
	}
	if len(res.Headers) < 10 {
		t.Errorf("headers %v", res.Headers)
	}
}

// A secret that straddles the capture cap must not leave its first part
// in the captured body.
func TestCapturedBodyDoesNotCutASecret(t *testing.T) {
	const maxBody = 1024
	secret := "straddle-secret-18" // 18 characters, as reported
	var body atomic.Pointer[string]
	tok := echoToken(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, *body.Load())
	})
	tok.Request.Params["password"] = Secret(secret)
	f := NewFetcher(WithMaxAuthBody(maxBody))
	forms := echoedForms(secret)
	for _, name := range []string{"raw", "query", "json \\uxxxx", "base64 std", "basic id:secret", "hex", "every byte %XX"} {
		form := forms[name]
		for before := 1; before < len(form); before++ {
			b := strings.Repeat(".", maxBody-before) + form + strings.Repeat(".", 3*maxBody)
			body.Store(&b)
			_, err := f.Fetch(t.Context(), tok)
			var aerr *AuthError
			if !errors.As(err, &aerr) {
				t.Fatalf("err = %v, want an *AuthError", err)
			}
			where := fmt.Sprintf("%s, %d bytes before the cap", name, before)
			if len(aerr.Body) > maxBody {
				t.Errorf("%s: the body is %d bytes, more than the cap", where, len(aerr.Body))
			}
			if !strings.HasPrefix(name, "basic") {
				for k := 2; k < len(form) && k <= before; k++ {
					if strings.HasSuffix(aerr.Body, form[:k]) {
						t.Errorf("%s: the body ends with %q, the start of the secret", where, form[:k])
						break
					}
				}
			}
			assertNoLeak(t, where, aerr.Body, secret)
		}
	}
}

// The case as reported: the default 64 KiB cap, an 18-character secret
// with 14 characters before the cap.
func TestCapturedBodyDoesNotCutASecretAtDefaultCap(t *testing.T) {
	secret := "reported-secret-18"
	tok := echoToken(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, strings.Repeat("x", 64<<10-14)+secret+strings.Repeat("x", 100))
	})
	tok.Request.Params["password"] = Secret(secret)
	_, err := NewFetcher().Fetch(t.Context(), tok)
	var aerr *AuthError
	if !errors.As(err, &aerr) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(aerr.Body, secret[:4]) {
		t.Errorf("the capped body ends with %q", aerr.Body[len(aerr.Body)-20:])
	}
}
