// Package oauthtest runs a real OAuth 2.0 authorization server for tests:
// Ory fosite (its compose package over an in-memory store) behind an
// httptest server on loopback, with refresh token rotation, and counters
// of what it saw: token requests, refresh tokens presented twice, token
// families revoked for a reused refresh token.
//
// fosite revokes the whole family of a refresh token when it is presented
// again after rotation (RFC 6819 §5.2.2.3), as the providers that rotate
// do: a test that finds ReusedRefreshTokens and FamiliesRevoked at zero has
// shown that no refresh token was sent twice.
package oauthtest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
)

// Options configure a Server. Zero values get the documented defaults.
type Options struct {
	// AccessTokenLifespan is the lifetime of access tokens (default 1 h;
	// fosite rounds expiries to the second).
	AccessTokenLifespan time.Duration
	// ClientID and ClientSecret of the registered client (default
	// "client-1" and a 24-character secret).
	ClientID, ClientSecret string
	// Audience the client may ask for (the "audience" parameter); default
	// ["crm"].
	Audience []string
}

// Request is a token request as the server received it.
type Request struct {
	Form url.Values
	// BasicUser is the user of the Basic Authorization header, "" when the
	// client authenticated in the body.
	BasicUser string
	Status    int
}

// Server is a running authorization server.
type Server struct {
	// URL is the server's base URL; TokenURL its token endpoint.
	URL, TokenURL          string
	ClientID, ClientSecret string
	// Scopes are the scopes the client may ask for.
	Scopes []string

	provider fosite.OAuth2Provider
	store    *store
	srv      *httptest.Server

	tokenCalls, refreshCalls, rotations atomic.Int64
	reused                              atomic.Int64

	mu       sync.Mutex
	seen     map[string]int
	requests []Request
}

// Scopes every client may ask for.
var clientScopes = []string{"api", "read", "offline", "offline_access"}

// New starts a Server for t, closed in t.Cleanup.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "client-1"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "client-secret-0123456789"
	}
	if opts.Audience == nil {
		opts.Audience = []string{"crm"}
	}
	cfg := &fosite.Config{
		AccessTokenLifespan:      opts.AccessTokenLifespan,
		GlobalSecret:             []byte("a-global-secret-of-32-bytes-long"),
		ClientSecretsHasher:      plainHasher{},
		AudienceMatchingStrategy: fosite.DefaultAudienceMatchingStrategy,
	}
	st := &store{MemoryStore: storage.NewMemoryStore(), revoked: map[string]bool{}}
	st.Clients[opts.ClientID] = &fosite.DefaultClient{ID: opts.ClientID, Secret: []byte(opts.ClientSecret),
		GrantTypes: []string{"client_credentials", "refresh_token", "password"}, Scopes: clientScopes,
		Audience: opts.Audience, ResponseTypes: []string{"code"}}
	st.Users["alice"] = storage.MemoryUserRelation{Username: "alice", Password: "alice-password"}
	provider := compose.Compose(cfg, st, compose.NewOAuth2HMACStrategy(cfg),
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		// The password grant only mints the first refresh token of a test
		// (MintRefreshToken); nothing under test uses it.
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory, //lint:ignore SA1019 test-only minting, see above

		compose.OAuth2TokenIntrospectionFactory,
	)
	s := &Server{ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, Scopes: clientScopes,
		provider: provider, store: st, seen: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", s.token)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL, s.TokenURL = s.srv.URL, s.srv.URL+"/oauth2/token"
	return s
}

// token is the token endpoint.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.tokenCalls.Add(1)
	_ = r.ParseForm()
	req := Request{Form: cloneValues(r.PostForm)}
	req.BasicUser, _, _ = r.BasicAuth()
	refresh := r.PostForm.Get("grant_type") == "refresh_token"
	if refresh {
		s.refreshCalls.Add(1)
		s.mu.Lock()
		rt := r.PostForm.Get("refresh_token")
		s.seen[rt]++
		if s.seen[rt] > 1 {
			s.reused.Add(1)
		}
		s.mu.Unlock()
	}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		req.Status = rec.status
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
	}()
	ar, err := s.provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{Subject: "alice"})
	if err != nil {
		s.provider.WriteAccessError(ctx, rec, ar, err)
		return
	}
	if !refresh {
		for _, scope := range ar.GetRequestedScopes() {
			ar.GrantScope(scope)
		}
		for _, aud := range ar.GetRequestedAudience() {
			ar.GrantAudience(aud)
		}
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, rec, ar, err)
		return
	}
	if refresh {
		s.rotations.Add(1)
	}
	s.provider.WriteAccessResponse(ctx, rec, ar, resp)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// MintRefreshToken returns a new refresh token of a new grant (through the
// password grant with scope offline_access), as an admin would paste it.
// It is not counted as a refresh.
func (s *Server) MintRefreshToken(t testing.TB, scopes ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"},
		"scope": {strings.Join(append([]string{"offline_access"}, scopes...), " ")}}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", s.TokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(s.ClientID), url.QueryEscape(s.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.RefreshToken == "" {
		t.Fatalf("mint refresh token: status %d, %v", resp.StatusCode, err)
	}
	s.tokenCalls.Add(-1) // not a call of the code under test
	s.mu.Lock()
	s.requests = s.requests[:len(s.requests)-1]
	s.mu.Unlock()
	return body.RefreshToken
}

// Valid reports whether accessToken is an access token the server issued
// and has neither expired nor been revoked (introspection).
func (s *Server) Valid(ctx context.Context, accessToken string) bool {
	_, _, err := s.provider.IntrospectToken(ctx, accessToken, fosite.AccessToken, &fosite.DefaultSession{})
	return err == nil
}

// RevokeAll revokes every refresh token issued so far: their next use is
// answered invalid_grant, as after a user revoked the app.
func (s *Server) RevokeAll() {
	s.store.revokeAll()
}

// TokenCalls is the number of token requests received.
func (s *Server) TokenCalls() int64 { return s.tokenCalls.Load() }

// RefreshCalls is the number of refresh_token grant requests received.
func (s *Server) RefreshCalls() int64 { return s.refreshCalls.Load() }

// Rotations is the number of refreshes answered with a new refresh token.
func (s *Server) Rotations() int64 { return s.rotations.Load() }

// ReusedRefreshTokens is the number of times a refresh token was presented
// again after its first use.
func (s *Server) ReusedRefreshTokens() int64 { return s.reused.Load() }

// FamiliesRevoked is the number of times fosite saw a rotated refresh
// token again and revoked its whole family.
func (s *Server) FamiliesRevoked() int64 { return s.store.familiesRevoked.Load() }

// Requests returns the token requests received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// store is fosite's in-memory store, counting reuse detections and able to
// revoke every refresh token.
type store struct {
	*storage.MemoryStore
	familiesRevoked atomic.Int64

	mu      sync.Mutex
	revoked map[string]bool
	created []string
}

func (s *store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	s.mu.Lock()
	s.created = append(s.created, signature)
	s.mu.Unlock()
	return s.MemoryStore.CreateRefreshTokenSession(ctx, signature, accessSignature, req)
}

func (s *store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	s.mu.Lock()
	revoked := s.revoked[signature]
	s.mu.Unlock()
	if revoked {
		return nil, fosite.ErrNotFound
	}
	r, err := s.MemoryStore.GetRefreshTokenSession(ctx, signature, session)
	if errors.Is(err, fosite.ErrInactiveToken) {
		s.familiesRevoked.Add(1) // fosite now revokes the family
	}
	return r, err
}

func (s *store) revokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sig := range s.created {
		s.revoked[sig] = true
	}
}

// plainHasher compares client secrets as they are: bcrypt would cost most
// of a load test's CPU.
type plainHasher struct{}

func (plainHasher) Compare(_ context.Context, hash, data []byte) error {
	if subtle.ConstantTimeCompare(hash, data) != 1 {
		return errors.New("secret does not match")
	}
	return nil
}

func (plainHasher) Hash(_ context.Context, data []byte) ([]byte, error) { return data, nil }
