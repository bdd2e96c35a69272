package oauthtest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
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
	// RedirectURIs the client may send the browser back to after the
	// login (default none; AllowRedirectURI adds one to a running server).
	// fosite matches them exactly, except that it ignores the port of an
	// "http" URI on a loopback IP such as 127.0.0.1 (RFC 8252 §7.3).
	RedirectURIs []string
	// Users who may log in, username to password (default alice with
	// "alice-password" and bob with "bob-password"). When set, they
	// replace the defaults.
	Users map[string]string
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
	// URL is the server's base URL; TokenURL its token endpoint,
	// AuthorizeURL its authorize endpoint (the login page) and RevokeURL
	// its revocation endpoint.
	URL, TokenURL           string
	AuthorizeURL, RevokeURL string
	ClientID, ClientSecret  string
	// Scopes are the scopes the client may ask for.
	Scopes []string

	provider fosite.OAuth2Provider
	store    *store
	srv      *httptest.Server
	// mintUser and mintPassword are the user MintRefreshToken logs in as.
	mintUser, mintPassword string

	tokenCalls, refreshCalls, rotations atomic.Int64
	reused                              atomic.Int64
	authorizeCalls, codeExchanges       atomic.Int64
	revocations                         atomic.Int64

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
	if opts.Users == nil {
		opts.Users = map[string]string{"alice": "alice-password", "bob": "bob-password"}
	}
	cfg := &fosite.Config{
		AccessTokenLifespan:      opts.AccessTokenLifespan,
		GlobalSecret:             []byte("a-global-secret-of-32-bytes-long"),
		ClientSecretsHasher:      plainHasher{},
		AudienceMatchingStrategy: fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCE:              true,
		// S256 only, as RFC 9700 §2.1.1 asks.
		EnablePKCEPlainChallengeMethod: false,
	}
	st := &store{MemoryStore: storage.NewMemoryStore(), revoked: map[string]bool{}, families: map[string][]string{},
		users: maps.Clone(opts.Users)}
	st.client = &fosite.DefaultClient{ID: opts.ClientID, Secret: []byte(opts.ClientSecret),
		GrantTypes: []string{"client_credentials", "refresh_token", "password", "authorization_code"},
		Scopes:     clientScopes, Audience: opts.Audience, ResponseTypes: []string{"code"},
		RedirectURIs: slices.Clone(opts.RedirectURIs)}
	provider := compose.Compose(cfg, st, compose.NewOAuth2HMACStrategy(cfg),
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory, // after the code handler, which it needs
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		// The password grant only mints the first refresh token of a test
		// (MintRefreshToken); nothing under test uses it.
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory, //lint:ignore SA1019 test-only minting, see above

		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	)
	s := &Server{ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, Scopes: clientScopes,
		provider: provider, store: st, seen: map[string]int{}}
	s.mintUser = slices.Min(slices.Collect(maps.Keys(opts.Users)))
	if _, ok := opts.Users["alice"]; ok {
		s.mintUser = "alice"
	}
	s.mintPassword = opts.Users[s.mintUser]
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", s.token)
	mux.HandleFunc("GET /oauth2/authorize", s.authorize)
	mux.HandleFunc("POST /oauth2/authorize", s.authorize)
	mux.HandleFunc("POST /oauth2/revoke", s.revoke)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL, s.TokenURL = s.srv.URL, s.srv.URL+"/oauth2/token"
	s.AuthorizeURL, s.RevokeURL = s.srv.URL+"/oauth2/authorize", s.srv.URL+"/oauth2/revoke"
	return s
}

// token is the token endpoint.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s.tokenCalls.Add(1)
	_ = r.ParseForm()
	req := Request{Form: cloneValues(r.PostForm)}
	req.BasicUser, _, _ = r.BasicAuth()
	grant := r.PostForm.Get("grant_type")
	refresh := grant == "refresh_token"
	if grant == "authorization_code" {
		s.codeExchanges.Add(1)
	}
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
	// The subject of client_credentials tokens. The password grant sets the
	// user's; the code and refresh grants replace the whole session with
	// the one stored with the code or the refresh token.
	session := &fosite.DefaultSession{Subject: s.ClientID}
	ar, err := s.provider.NewAccessRequest(ctx, r, session)
	if err != nil {
		s.provider.WriteAccessError(ctx, rec, ar, err)
		return
	}
	if grant == "client_credentials" || grant == "password" {
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
// Its subject is alice, or the first of Options.Users in name order when
// they have no alice. It is not counted as a refresh.
func (s *Server) MintRefreshToken(t testing.TB, scopes ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {s.mintUser}, "password": {s.mintPassword},
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

// Subject returns the subject of accessToken: the user who logged in
// (code and password grants), or the client ID (client_credentials). It
// reports false when accessToken is not an access token the server issued,
// has expired or has been revoked.
func (s *Server) Subject(ctx context.Context, accessToken string) (string, bool) {
	use, ar, err := s.provider.IntrospectToken(ctx, accessToken, fosite.AccessToken, &fosite.DefaultSession{})
	if err != nil || use != fosite.AccessToken {
		return "", false
	}
	return ar.GetSession().GetSubject(), true
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

// AuthorizeCalls is the number of authorize requests that passed
// validation and were shown the login page (a failed login showing it
// again is not counted).
func (s *Server) AuthorizeCalls() int64 { return s.authorizeCalls.Load() }

// CodeExchanges is the number of authorization_code grant requests
// received at the token endpoint, answered or refused.
func (s *Server) CodeExchanges() int64 { return s.codeExchanges.Load() }

// Revocations is the number of revocation requests answered 200 (which
// RFC 7009 §2.2 also asks for a token the server does not know).
func (s *Server) Revocations() int64 { return s.revocations.Load() }

// Requests returns the token requests received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// store is fosite's in-memory store, counting reuse detections and able to
// revoke every refresh token. It holds the one client and the users
// itself.
type store struct {
	*storage.MemoryStore
	familiesRevoked atomic.Int64
	users           map[string]string // read only

	// refresh guards fosite's refresh token map: MemoryStore's
	// RevokeRefreshToken (and so RotateRefreshToken) writes it under
	// another mutex than the one its reads take, so two refresh grants at
	// once, or a refresh and an introspection that falls back to the map,
	// race.
	refresh sync.RWMutex

	mu      sync.Mutex
	client  *fosite.DefaultClient // replaced, never changed in place
	revoked map[string]bool
	created []string
	// families are the refresh token signatures of each request ID (a
	// grant and the refresh tokens that rotated from it).
	families map[string][]string
}

// GetClient returns the client as it is now: fosite reads its redirect URIs
// after the call, without a lock.
func (s *store) GetClient(_ context.Context, id string) (fosite.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != s.client.ID {
		return nil, fosite.ErrNotFound
	}
	return s.client, nil
}

// allowRedirectURI registers uri with a new copy of the client.
func (s *store) allowRedirectURI(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *s.client
	c.RedirectURIs = append(slices.Clone(c.RedirectURIs), uri)
	s.client = &c
}

// Authenticate checks a user's password and returns the username as the
// subject (fosite's memory store returns a random one).
func (s *store) Authenticate(_ context.Context, name, secret string) (string, error) {
	password, ok := s.users[name]
	if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(secret)) != 1 {
		return "", fosite.ErrNotFound
	}
	return name, nil
}

func (s *store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	s.mu.Lock()
	s.created = append(s.created, signature)
	s.families[req.GetID()] = append(s.families[req.GetID()], signature)
	s.mu.Unlock()
	s.refresh.Lock()
	defer s.refresh.Unlock()
	return s.MemoryStore.CreateRefreshTokenSession(ctx, signature, accessSignature, req)
}

func (s *store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	s.mu.Lock()
	revoked := s.revoked[signature]
	s.mu.Unlock()
	if revoked {
		return nil, fosite.ErrNotFound
	}
	s.refresh.RLock()
	r, err := s.MemoryStore.GetRefreshTokenSession(ctx, signature, session)
	s.refresh.RUnlock()
	if errors.Is(err, fosite.ErrInactiveToken) && !revoking(ctx) {
		s.familiesRevoked.Add(1) // fosite now revokes the family
	}
	return r, err
}

// RevokeRefreshToken revokes the refresh token of a request. When the
// revocation endpoint asks, it revokes the whole family as RevokeAll does,
// so that presenting one of them is not taken for reuse after rotation.
func (s *store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if revoking(ctx) {
		s.mu.Lock()
		for _, sig := range s.families[requestID] {
			s.revoked[sig] = true
		}
		s.mu.Unlock()
	}
	s.refresh.Lock()
	defer s.refresh.Unlock()
	return s.MemoryStore.RevokeRefreshToken(ctx, requestID)
}

func (s *store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	return s.MemoryStore.DeleteRefreshTokenSession(ctx, signature)
}

// RotateRefreshToken is MemoryStore's, with the revocation above (the
// embedded one would call MemoryStore's own RevokeRefreshToken).
func (s *store) RotateRefreshToken(ctx context.Context, requestID, refreshTokenSignature string) error {
	if err := s.RevokeRefreshToken(ctx, requestID); err != nil {
		return err
	}
	return s.RevokeAccessToken(ctx, requestID)
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
