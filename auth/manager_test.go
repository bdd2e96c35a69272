package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/natstest"
)

func newKV(t *testing.T, bucket string) jetstream.KeyValue {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: bucket, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

type tokenEndpoint struct {
	*httptest.Server
	calls     atomic.Int64
	expiresIn int
	mu        sync.Mutex
	last      *http.Request
	lastBody  string
}

func newTokenEndpoint(t *testing.T, expiresIn int) *tokenEndpoint {
	e := &tokenEndpoint{expiresIn: expiresIn}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := e.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.last, e.lastBody = r.Clone(context.Background()), string(body)
		e.mu.Unlock()
		fmt.Fprintf(w, `{"access_token":"fetched-token-%04d","expires_in":%d}`, n, e.expiresIn)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *tokenEndpoint) token(method, encoding string) *Token {
	t := &Token{ID: "tk", Type: TypeHTTP, Prefix: "Bearer ", TokenPath: "access_token", ExpiresInPath: "expires_in",
		Request: &AuthRequest{Method: method, URL: e.URL + "/token?fixed=1", ParamsEncoding: encoding,
			Headers: map[string]Secret{"X-Api": "header-secret-1"},
			Params:  map[string]Secret{"client_id": "cid", "client_secret": "param-secret-2"}}}
	t.Normalize()
	return t
}

func TestAuthRequestEncodings(t *testing.T) {
	e := newTokenEndpoint(t, 0)
	tests := []struct {
		method, encoding      string
		wantQuery, wantBody   string
		wantContentTypePrefix string
	}{
		{"POST", "", "fixed=1", "client_id=cid&client_secret=param-secret-2", "application/x-www-form-urlencoded"},
		{"POST", "json", "fixed=1", `{"client_id":"cid","client_secret":"param-secret-2"}`, "application/json"},
		{"GET", "", "client_id=cid&client_secret=param-secret-2&fixed=1", "", ""},
		{"PUT", "query", "client_id=cid&client_secret=param-secret-2&fixed=1", "", ""},
	}
	f := NewFetcher()
	for _, tc := range tests {
		t.Run(tc.method+"/"+tc.encoding, func(t *testing.T) {
			tok := e.token(tc.method, tc.encoding)
			if err := tok.Validate(); err != nil {
				t.Fatal(err)
			}
			got, err := f.Fetch(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got.Token.Reveal(), "fetched-token-") {
				t.Errorf("token %q", got.Token.Reveal())
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.last.Method != tc.method || e.last.URL.RawQuery != tc.wantQuery || e.lastBody != tc.wantBody ||
				e.last.Header.Get("X-Api") != "header-secret-1" || !strings.HasPrefix(e.last.Header.Get("Content-Type"), tc.wantContentTypePrefix) {
				t.Errorf("auth request %s %s body %q headers %v", e.last.Method, e.last.URL, e.lastBody, e.last.Header)
			}
		})
	}
}

func TestTokenValidation(t *testing.T) {
	good := func() *Token {
		return &Token{ID: "ok", Type: "http", TokenPath: "access_token",
			Request: &AuthRequest{Method: "post", URL: "https://auth.example.com/token"}}
	}
	tests := []struct {
		name    string
		mutate  func(*Token)
		wantErr string
	}{
		{"valid", func(*Token) {}, ""},
		{"missing url", func(t *Token) { t.Request.URL = "" }, "missing field request.url"},
		{"bad method", func(t *Token) { t.Request.Method = "FETCH" }, `request.method "FETCH" must be one of`},
		{"bad path", func(t *Token) { t.TokenPath = "a..b" }, "token_path: empty segment"},
		{"no path", func(t *Token) { t.TokenPath = "" }, "missing field token_path"},
		{"bad encoding", func(t *Token) { t.Request.ParamsEncoding = "xml" }, `params_encoding "xml" must be form, json or query`},
		{"bad header name", func(t *Token) { t.Request.Headers = map[string]Secret{"Bad Header": "x"} }, `"Bad Header" is not a valid HTTP header name`},
		{"bad token header", func(t *Token) { t.Header = "X Token" }, `header "X Token" is not a valid`},
		{"bad id", func(t *Token) { t.ID = "a.b" }, `id "a.b" must match`},
		{"no type", func(t *Token) { t.Type = "" }, "missing field type"},
		{"unknown type", func(t *Token) { t.Type = "oauth" }, `type "oauth" must be`},
		{"ftp url", func(t *Token) { t.Request.URL = "ftp://x/y" }, "absolute http or https URL"},
		{"text without value", func(t *Token) { t.Type = "text"; t.Request = nil; t.TokenPath = "" }, "a text token needs a value"},
		{"GET with json params", func(t *Token) {
			t.Request.Method = "GET"
			t.Request.ParamsEncoding = "json"
			t.Request.Params = map[string]Secret{"a": "b"}
		}, "needs a body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := good()
			tc.mutate(tok)
			tok.Normalize()
			err := tok.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSecretMasksItself(t *testing.T) {
	s := Secret("super-secret-value-wxyz")
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "secret", s, "token", &Token{Value: s})
	outputs := []string{s.String(), fmt.Sprintf("%v %s %q %+v %#v %x", s, s, s, s, s, s), logged.String()}
	data, _ := json.Marshal(struct{ S Secret }{s})
	outputs = append(outputs, string(data))
	for _, o := range outputs {
		if strings.Contains(o, "super-secret") {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if s.String() != "****wxyz" || Mask("short") != "****" || Mask("") != "" {
		t.Errorf("masks: %q %q", s.String(), Mask("short"))
	}
}

// TestDeadLeaseHolder: a replica that took the refresh lease and died does
// not block refreshes beyond the lease TTL.
func TestDeadLeaseHolder(t *testing.T) {
	kv := newKV(t, "fetched")
	e := newTokenEndpoint(t, 0)
	tok := e.token("POST", "")
	m := NewManager(kv, NewFetcher(), WithLeaseTTL(time.Second))
	if err := m.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The dead holder's lease, taken just now.
	dead, _ := json.Marshal(leaseRecord{Holder: "dead-replica", ExpiresAt: time.Now().Add(time.Second).UnixMilli()})
	if _, err := kv.Create(t.Context(), leaseKeyPrefix+tok.ID, dead); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	f, oc, err := m.Current(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	if !oc.Fetched || e.calls.Load() != 1 || f.Token.Reveal() != "fetched-token-0001" {
		t.Errorf("outcome %+v, %d auth calls, token %s", oc, e.calls.Load(), f.Token)
	}
	t.Logf("took over the dead holder's lease after %s (TTL 1s)", waited.Round(time.Millisecond))
	if waited < 500*time.Millisecond {
		t.Errorf("took the lease after %s, before the dead holder's lease expired", waited)
	}
	// The lease is released after the refresh.
	if _, err := kv.Get(t.Context(), leaseKeyPrefix+tok.ID); err == nil {
		t.Error("lease still held after the refresh")
	}
}

// TestProactiveRefresh: within twice the margin of its expiry a token is
// refreshed in the background while callers keep using the current one.
func TestProactiveRefresh(t *testing.T) {
	kv := newKV(t, "fetched")
	e := newTokenEndpoint(t, 100) // 100 s lifetime: margin 20 s
	tok := e.token("POST", "")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := NewManager(kv, NewFetcher(WithClock(clock)), WithManagerClock(clock))
	if err := m.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	first, _, err := m.Current(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(70 * time.Second) // 30 s left: inside 2x margin, outside the margin
	mu.Unlock()
	got, oc, err := m.Current(t.Context(), tok)
	if err != nil || got.Revision != first.Revision || oc.Waited {
		t.Fatalf("inside the proactive window the caller should get the current token at once: %v %+v %v", got, oc, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Peek(tok.ID).Revision == first.Revision && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e.calls.Load() != 2 || m.Peek(tok.ID).Revision == first.Revision {
		t.Fatalf("no background refresh: %d auth calls", e.calls.Load())
	}
	mu.Lock()
	now = now.Add(15 * time.Second) // the refreshed token (fetched at +70 s) has 85 s left: no refresh
	mu.Unlock()
	if _, _, err := m.Current(t.Context(), tok); err != nil || e.calls.Load() != 2 {
		t.Errorf("unexpected refresh: %d auth calls, %v", e.calls.Load(), err)
	}
	mu.Lock()
	now = now.Add(100 * time.Second) // expired: the caller waits for a new one
	mu.Unlock()
	f, oc, err := m.Current(t.Context(), tok)
	if err != nil || !oc.Fetched || e.calls.Load() != 3 || f.Token.Reveal() != "fetched-token-0003" {
		t.Errorf("expired token: %+v %v, %d auth calls", oc, err, e.calls.Load())
	}
}

func TestSealerRotation(t *testing.T) {
	oldKey, newKey := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	kv := newKV(t, "tokens")
	oldSealer, err := NewSealer(oldKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := &Token{ID: "crm", Type: TypeText, Value: "text-secret-value-9876", Header: "Authorization"}
	if _, err := NewStore(kv, oldSealer).Put(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	raw, _ := kv.Get(t.Context(), "crm")
	if strings.Contains(string(raw.Value()), "text-secret") || !strings.Contains(string(raw.Value()), "enc:v1:") {
		t.Fatalf("stored value is not encrypted: %s", raw.Value())
	}
	rotated, err := NewSealer(newKey, []string{oldKey})
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewStore(kv, rotated).Get(t.Context(), "crm")
	if err != nil || got.Value.Reveal() != "text-secret-value-9876" {
		t.Fatalf("after rotation: %v %v", got, err)
	}
	onlyNew, _ := NewSealer(newKey, nil)
	if _, err := NewStore(kv, onlyNew).Get(t.Context(), "crm"); err == nil || !strings.Contains(err.Error(), "ACTIONS_ENCRYPTION_OLD_KEYS") {
		t.Errorf("without the old key: err = %v, want a hint to add it", err)
	}
	if _, err := NewSealer("not-base64", nil); err == nil {
		t.Error("a bad key was accepted")
	}
}
