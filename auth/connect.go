package auth

// The browser connect flow of authorization_code tokens (contract §11): a
// single-use link on the consumer's own HTTP server, the redirect to the
// provider with PKCE S256, and the callback that exchanges the code and
// stores the connection. Its state lives in a KV bucket with the link's
// TTL, so any replica serves the link and the callback.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/oauth2"

	"customactions/events"
)

// Paths of the connect flow on the consumer's HTTP server.
const (
	ConnectPath  = "/connect/"
	CallbackPath = "/oauth/callback"
)

// DefaultConnectTTL is how long a connect link stays valid.
const DefaultConnectTTL = 10 * time.Minute

// Kinds of ConnectError: what the end user is shown.
const (
	ConnectInvalidLink    = "invalid_link"    // unknown state: tampered, or never made
	ConnectLinkUsed       = "link_used"       // the callback of this state already ran
	ConnectLinkExpired    = "link_expired"    // older than the TTL
	ConnectAccessDenied   = "access_denied"   // the provider answered an error (the user said no)
	ConnectMissingCode    = "missing_code"    // a callback without code or error
	ConnectTokenChanged   = "token_changed"   // the token was deleted or is no longer authorization_code
	ConnectExchangeFailed = "exchange_failed" // the token endpoint refused the code
	ConnectUnavailable    = "unavailable"     // KV failed: try the link again
)

// ConnectError is why a connect link or callback did not connect anything.
// Message is for the end user: plain text without secrets (a page escapes
// it).
type ConnectError struct {
	Kind    string
	Message string
	Err     error
}

func (e *ConnectError) Error() string { return e.Message }

func (e *ConnectError) Unwrap() error { return e.Err }

// ConnectRequest asks for a connect link.
type ConnectRequest struct {
	TokenID string
	// EndUserID is the end user of a per_end_user token, "" for a
	// workspace-wide token (an admin connects it).
	EndUserID string
	// TriggerID and ActionID are the trigger that asked, if any: the
	// connection event names it so the producer can send it again.
	TriggerID, ActionID string
}

// Connected is a connection made through the browser.
type Connected struct {
	ConnectRequest
	At     time.Time
	Health Health
}

// connectState is a pending link as stored, under the hash of its state.
type connectState struct {
	TokenID   string `json:"token_id"`
	EndUserID string `json:"end_user_id,omitempty"`
	TriggerID string `json:"trigger_id,omitempty"`
	ActionID  string `json:"action_id,omitempty"`
	// Verifier is the PKCE code verifier, sealed when a key is set.
	Verifier  string `json:"verifier"`
	CreatedAt int64  `json:"created_at_ms"`
	ExpiresAt int64  `json:"expires_at_ms"`
	// UsedAt is set by the one callback that consumed the state.
	UsedAt int64 `json:"used_at_ms,omitempty"`
	// RedirectURI is the callback of the replica that made the link: the
	// authorization request and the code exchange must name the same one
	// (RFC 6749 §4.1.3), whichever replica serves them.
	RedirectURI string `json:"redirect_uri"`
}

// ConnectConfig configures a Connector.
type ConnectConfig struct {
	// PublicURL is where end users' browsers reach the consumer's HTTP
	// server (ACTIONS_PUBLIC_URL): links are PublicURL/connect/<state>,
	// the redirect URI PublicURL/oauth/callback.
	PublicURL string
	// TTL is how long a link stays valid (default 10 min).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Connector runs the connect flow over the token store, the Manager (which
// stores the connection and speaks to the token endpoint) and the states
// bucket.
type Connector struct {
	store  *Store
	mgr    *Manager
	states KV
	public string
	ttl    time.Duration
	now    func() time.Time

	mu   sync.Mutex
	hook func(Connected)
}

// NewConnector returns a Connector; the states bucket should expire its
// entries after cfg.TTL (expiry is also checked on each use).
func NewConnector(store *Store, mgr *Manager, states KV, cfg ConnectConfig) (*Connector, error) {
	u, err := events.ParseHTTPURL(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("public URL %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("public URL must have no query or fragment")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultConnectTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Connector{store: store, mgr: mgr, states: states, public: strings.TrimRight(u.String(), "/"), ttl: cfg.TTL, now: cfg.Now}, nil
}

// TTL is how long a link stays valid.
func (c *Connector) TTL() time.Duration { return c.ttl }

// RedirectURI is the callback the provider sends the browser back to; it
// must be registered with the provider's client.
func (c *Connector) RedirectURI() string { return c.public + CallbackPath }

// OnConnected sets the function that hears of every connection made
// through this Connector (by the replica that served the callback). It
// must not block.
func (c *Connector) OnConnected(f func(Connected)) {
	c.mu.Lock()
	c.hook = f
	c.mu.Unlock()
}

func stateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return "s_" + hex.EncodeToString(sum[:20])
}

// Link makes a single-use connect link for req: the token must be an
// authorization_code oauth2 token, per_end_user exactly when req names an
// end user. An end user who was given a link that is still unused and
// valid for at least half of its TTL gets that link again (its connection
// event names the trigger that asked first).
func (c *Connector) Link(ctx context.Context, req ConnectRequest) (string, error) {
	tok, err := c.store.Get(ctx, req.TokenID)
	if err != nil {
		return "", err
	}
	if err := connectable(tok, req.EndUserID); err != nil {
		return "", err
	}
	if req.EndUserID != "" {
		if link := c.pendingLink(ctx, req); link != "" {
			return link, nil
		}
	}
	state := rand.Text()
	key := stateKey(state)
	verifier, err := c.mgr.sealer.Seal(oauth2.GenerateVerifier(), "connect/"+key)
	if err != nil {
		return "", err
	}
	now := c.now()
	data, err := json.Marshal(connectState{TokenID: req.TokenID, EndUserID: req.EndUserID, TriggerID: req.TriggerID,
		ActionID: req.ActionID, Verifier: verifier, CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(c.ttl).UnixMilli(), RedirectURI: c.RedirectURI()})
	if err != nil {
		return "", err
	}
	if _, err := c.states.Create(ctx, key, data); err != nil {
		return "", fmt.Errorf("store connect link: %w", err)
	}
	if req.EndUserID != "" {
		c.rememberLink(ctx, req, state, now)
	}
	return c.public + ConnectPath + state, nil
}

// pendingRecord points at the link an end user was last given, so that
// the triggers that follow for them (a bot retrying, a flood) get the same
// link instead of a new state each.
type pendingRecord struct {
	// State is the link's state, sealed when a key is set.
	State     string `json:"state"`
	ExpiresAt int64  `json:"expires_at_ms"`
}

func pendingKey(tokenID, endUser string) string {
	sum := sha256.Sum256([]byte(tokenID + "\x00" + endUser))
	return "u_" + hex.EncodeToString(sum[:20])
}

// pendingLink returns the link the end user of req was given, while it
// is unused and valid for at least half of its TTL; "" otherwise.
func (c *Connector) pendingLink(ctx context.Context, req ConnectRequest) string {
	key := pendingKey(req.TokenID, req.EndUserID)
	e, err := c.states.Get(ctx, key)
	if err != nil {
		return ""
	}
	var p pendingRecord
	if json.Unmarshal(e.Value(), &p) != nil || c.now().Add(c.ttl/2).After(time.UnixMilli(p.ExpiresAt)) {
		return ""
	}
	state, err := c.mgr.sealer.Open(p.State, "connect/"+key)
	if err != nil {
		return ""
	}
	if st, _, err := c.load(ctx, state); err != nil || st.TokenID != req.TokenID || st.EndUserID != req.EndUserID {
		return "" // used, expired or unreadable: make a new one
	}
	return c.public + ConnectPath + state
}

// rememberLink records the link just made for the end user of req; a
// failure only means the next trigger gets a new link.
func (c *Connector) rememberLink(ctx context.Context, req ConnectRequest, state string, now time.Time) {
	key := pendingKey(req.TokenID, req.EndUserID)
	sealed, err := c.mgr.sealer.Seal(state, "connect/"+key)
	if err != nil {
		return
	}
	data, _ := json.Marshal(pendingRecord{State: sealed, ExpiresAt: now.Add(c.ttl).UnixMilli()})
	_, _ = c.states.Put(ctx, key, data)
}

// connectable reports why tok cannot be connected for endUser.
func connectable(tok *Token, endUser string) error {
	switch {
	case tok.Type != TypeOAuth2 || tok.OAuth2.Grant != GrantAuthorizationCode:
		return fmt.Errorf("%w: token %s is not an oauth2 token with grant authorization_code: only those are connected through the browser", ErrInvalidToken, tok.ID)
	case tok.OAuth2.PerEndUser && endUser == "":
		return fmt.Errorf("%w: token %s has per_end_user connections: name the end user", ErrInvalidToken, tok.ID)
	case !tok.OAuth2.PerEndUser && endUser != "":
		return fmt.Errorf("%w: token %s is workspace-wide: it has no end users' connections", ErrInvalidToken, tok.ID)
	case endUser != "" && !events.ValidID(endUser):
		return fmt.Errorf("%w: end user id %q must match ^[A-Za-z0-9_-]{1,128}$", ErrInvalidToken, endUser)
	}
	return nil
}

// load reads the state of a link; a missing, used or expired one is a
// *ConnectError.
func (c *Connector) load(ctx context.Context, state string) (*connectState, uint64, error) {
	if state == "" || len(state) > 256 {
		return nil, 0, &ConnectError{Kind: ConnectInvalidLink, Message: "This link is not valid. Ask for a new one."}
	}
	e, err := c.states.Get(ctx, stateKey(state))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, &ConnectError{Kind: ConnectInvalidLink, Message: "This link is not valid or has expired. Ask for a new one."}
	}
	if err != nil {
		return nil, 0, &ConnectError{Kind: ConnectUnavailable, Message: "The connection service is unavailable. Try the link again in a minute.", Err: err}
	}
	var st connectState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, &ConnectError{Kind: ConnectInvalidLink, Message: "This link is not valid. Ask for a new one.", Err: err}
	}
	switch {
	case st.UsedAt != 0:
		return nil, 0, &ConnectError{Kind: ConnectLinkUsed, Message: "This link was already used. Ask for a new one if you need to connect again."}
	case !c.now().Before(time.UnixMilli(st.ExpiresAt)):
		return nil, 0, &ConnectError{Kind: ConnectLinkExpired, Message: "This link has expired. Ask for a new one."}
	}
	return &st, e.Revision(), nil
}

// token returns the token of st, still connectable as when the link was
// made.
func (c *Connector) token(ctx context.Context, st *connectState) (*Token, error) {
	tok, err := c.store.Get(ctx, st.TokenID)
	if err == nil {
		err = connectable(tok, st.EndUserID)
	}
	if err != nil {
		return nil, &ConnectError{Kind: ConnectTokenChanged, Message: "This connection is no longer set up. Ask for a new link.", Err: err}
	}
	return tok, nil
}

// AuthorizeURL is where the link with state sends the browser: the
// provider's authorize_url with response_type=code, client_id,
// redirect_uri, scope, state and the S256 code_challenge. Opening the link
// again (a link preview, a second click) gives the same redirect; the
// state is spent by the callback.
func (c *Connector) AuthorizeURL(ctx context.Context, state string) (string, error) {
	st, _, err := c.load(ctx, state)
	if err != nil {
		return "", err
	}
	tok, err := c.token(ctx, st)
	if err != nil {
		return "", err
	}
	verifier, err := c.mgr.sealer.Open(st.Verifier, "connect/"+stateKey(state))
	if err != nil {
		return "", &ConnectError{Kind: ConnectUnavailable, Message: "This link cannot be read by this service. Ask for a new one.", Err: err}
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	for k, v := range tok.OAuth2.AuthorizeParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return tok.OAuth2.config(st.RedirectURI).AuthCodeURL(state, opts...), nil
}

// Complete runs the callback: q is its query (state, and code or error).
// It spends the state first (one callback per link, across replicas), then
// exchanges the code with the PKCE verifier and stores the connection over
// any earlier one. Every failure is a *ConnectError and stores nothing.
func (c *Connector) Complete(ctx context.Context, q url.Values) (Connected, error) {
	state := q.Get("state")
	st, rev, err := c.load(ctx, state)
	if err != nil {
		return Connected{}, err
	}
	key := stateKey(state)
	used := *st
	used.UsedAt = c.now().UnixMilli()
	data, err := json.Marshal(used)
	if err != nil {
		return Connected{}, err
	}
	if _, err := c.states.Update(ctx, key, data, rev); err != nil {
		if moved(err) {
			return Connected{}, &ConnectError{Kind: ConnectLinkUsed, Message: "This link was already used. Ask for a new one if you need to connect again."}
		}
		return Connected{}, &ConnectError{Kind: ConnectUnavailable, Message: "The connection service is unavailable. Ask for a new link.", Err: err}
	}
	// The state is spent: finish even if the browser goes away meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if e := q.Get("error"); e != "" {
		msg := "You did not allow access, so nothing was connected."
		if e != "access_denied" {
			msg = "The provider did not connect the account (" + capString(e, 64) + "), so nothing was connected."
		}
		return Connected{}, &ConnectError{Kind: ConnectAccessDenied, Message: msg}
	}
	code := q.Get("code")
	if code == "" {
		return Connected{}, &ConnectError{Kind: ConnectMissingCode, Message: "The provider sent no authorization code, so nothing was connected. Ask for a new link."}
	}
	tok, err := c.token(ctx, st)
	if err != nil {
		return Connected{}, err
	}
	verifier, err := c.mgr.sealer.Open(st.Verifier, "connect/"+key)
	if err != nil {
		return Connected{}, &ConnectError{Kind: ConnectUnavailable, Message: "This link cannot be read by this service. Ask for a new one.", Err: err}
	}
	g := c.mgr.exchangeCode(ctx, tok, Secret(code), Secret(verifier), st.RedirectURI)
	if g.outcome != granted {
		return Connected{}, &ConnectError{Kind: ConnectExchangeFailed, Message: "The provider refused to complete the connection. Ask for a new link.", Err: g.err}
	}
	h, err := c.mgr.storeConnection(ctx, tok, st.EndUserID, g)
	if err != nil {
		return Connected{}, &ConnectError{Kind: ConnectUnavailable, Message: "The connection could not be saved. Ask for a new link.", Err: err}
	}
	done := Connected{ConnectRequest: ConnectRequest{TokenID: st.TokenID, EndUserID: st.EndUserID, TriggerID: st.TriggerID, ActionID: st.ActionID},
		At: c.now(), Health: h}
	c.mu.Lock()
	hook := c.hook
	c.mu.Unlock()
	if hook != nil {
		hook(done)
	}
	return done, nil
}

// storeConnection writes the connection that g (an exchanged code) made
// for endUser of tok ("" for the token's own) over whatever was there.
func (m *Manager) storeConnection(ctx context.Context, tok *Token, endUser string, g grant) (Health, error) {
	name := connName(tok.ID, endUser)
	prev, err := m.readOAuth(ctx, name)
	if err != nil && !errors.Is(err, ErrTokenUnreadable) {
		return Health{}, err
	}
	now := m.now()
	next := &oauthConn{Access: g.access, Refresh: g.refresh, FetchedAt: now, ConfigHash: tok.ConfigHash(),
		Connection: tok.OAuth2.connectionKey(), Rotation: rotationUnknown}
	if prev != nil {
		next.Gen, next.Health = prev.Gen, prev.Health
	}
	next.Gen++
	if g.expiresIn > 0 {
		next.ExpiresAt = now.Add(g.expiresIn)
	}
	next.setHealth(HealthOK, "", now)
	return m.install(ctx, name, prev, next)
}
