package auth

// What admins do with the connection of an oauth2 token: the
// test-before-save, its view, and its removal.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// OAuth2View describes the connection of an oauth2 token without showing
// a secret.
type OAuth2View struct {
	Health
	AccessTokenPreview  string
	RefreshTokenPreview string
	FetchedAt           time.Time
	ExpiresAt           time.Time
}

// OAuth2View returns what is known of the connection of the oauth2 token
// id; ok is false when it has none.
func (m *Manager) OAuth2View(ctx context.Context, id string) (v OAuth2View, ok bool, err error) {
	c := m.cachedOAuth(id)
	if c == nil {
		if c, err = m.readOAuth(ctx, id); err != nil || c == nil {
			return OAuth2View{}, false, err
		}
	}
	return OAuth2View{Health: c.Health, AccessTokenPreview: Mask(c.Access.Reveal()), RefreshTokenPreview: Mask(c.Refresh.Reveal()),
		FetchedAt: c.FetchedAt, ExpiresAt: c.ExpiresAt}, true, nil
}

// ForgetOAuth2 drops the connection of the oauth2 token id (deleted, or
// changed to another type).
func (m *Manager) ForgetOAuth2(ctx context.Context, id string) error {
	m.oauth.conns.Drop(id)
	if err := m.kv.Delete(ctx, oauth2KeyPrefix+id); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget oauth2 connection of token %s: %w", id, err)
	}
	return nil
}

// SaveOAuth2 runs the test-before-save of the valid oauth2 token tok and
// writes the connection it makes, before the token itself is saved:
//
//   - client_credentials: one token request; its access token is kept.
//   - a pasted refresh token (tok.OAuth2.RefreshToken): one refresh with
//     it. The refresh token it answers (the rotated one) replaces the
//     connection, and tok.OAuth2.RefreshToken is cleared: the pasted one
//     is spent, and is not stored.
//   - no pasted refresh token, and a connection with one for the same
//     token_url and client_id: one refresh of it with tok's settings,
//     through the fenced refresh (no other replica sends it meanwhile).
//   - per_end_user: nothing (the end users connect); a workspace
//     connection left from before is dropped.
//   - no refresh token at all: an authorization_code token is saved not
//     connected (reauthorization_required until it is connected); a
//     refresh_token token is refused.
//
// A health change it makes (for example reauthorization_required to ok) is
// reported to the OnHealthChange hook. It returns the health written.
//
// Errors: ErrTestFailed (wrapped, with the reason: the token must not be
// saved); others are faults of KV.
func (m *Manager) SaveOAuth2(ctx context.Context, tok *Token) (Health, error) {
	o := tok.OAuth2
	if o.PerEndUser {
		// Connections are the end users', made through the browser: the
		// token has none of its own, and nothing to test before it is
		// saved (its client is tried by the first code exchange).
		return Health{}, m.ForgetOAuth2(ctx, tok.ID)
	}
	prev, err := m.readOAuth(ctx, tok.ID)
	if err != nil && !errors.Is(err, ErrTokenUnreadable) {
		return Health{}, err
	}
	switch {
	case o.Grant == GrantClientCredentials || o.RefreshToken != "":
		return m.connect(ctx, tok, prev)
	case prev != nil && prev.Refresh != "" && prev.Connection == o.connectionKey():
		c, _, err := m.oauthCoordinate(ctx, workspace(tok), prev.Gen, true)
		if errors.Is(err, ErrReauthorizationRequired) && !errors.Is(err, ErrTestFailed) {
			return Health{}, fmt.Errorf("%w: %w", ErrTestFailed, err)
		}
		if err != nil {
			return Health{}, err // ErrTestFailed, or KV's
		}
		return c.Health, nil
	case o.Grant == GrantRefreshToken:
		return Health{}, fmt.Errorf("%w: missing field oauth2.refresh_token (grant refresh_token): paste a refresh token", ErrInvalidToken)
	}
	// An authorization_code token that is not connected yet.
	next := prev.clone()
	next.Refreshing, next.Refresh, next.Access = nil, "", ""
	next.setHealth(HealthReauthorizationRequired, reasonNotConnected, m.now())
	return m.install(ctx, tok.ID, prev, next)
}

// connect makes a new connection for tok with one token request (a
// refresh with the pasted refresh token, or client_credentials) and
// writes it over whatever was there.
func (m *Manager) connect(ctx context.Context, tok *Token, prev *oauthConn) (Health, error) {
	o := tok.OAuth2
	g := m.obtainGrant(ctx, tok, o.RefreshToken)
	switch g.outcome {
	case granted:
	case unanswered:
		return Health{}, fmt.Errorf("%w: %v; the refresh token may be spent: paste a new one", ErrTestFailed, g.err)
	default:
		return Health{}, fmt.Errorf("%w: %v", ErrTestFailed, g.err)
	}
	now := m.now()
	next := &oauthConn{Access: g.access, FetchedAt: now, ConfigHash: tok.ConfigHash()}
	if prev != nil {
		next.Gen, next.Health = prev.Gen, prev.Health
	}
	next.Gen++
	if g.expiresIn > 0 {
		next.ExpiresAt = now.Add(g.expiresIn)
	}
	if o.needsRefreshToken() {
		next.Refresh, next.Connection, next.Rotation = g.refresh, o.connectionKey(), rotationNo
		if g.rotated {
			next.Rotation = rotationYes
		}
		o.RefreshToken = ""
	}
	next.setHealth(HealthOK, "", now)
	return m.install(ctx, tok.ID, prev, next)
}

// install writes next over anything, and reports the change of health.
func (m *Manager) install(ctx context.Context, id string, prev, next *oauthConn) (Health, error) {
	written, err := m.putOAuth(ctx, id, next)
	if err != nil {
		return Health{}, err
	}
	m.reportHealth(id, prev, written)
	return written.Health, nil
}

// OAuth2Test is what a test token request of an oauth2 token answered.
type OAuth2Test struct {
	// Status is the token endpoint's HTTP status (0 when no answer came).
	Status       int
	TokenPreview string
	ExpiresIn    time.Duration
	// Body is an error answer, capped, secrets masked.
	Body string
	// Err is why the test failed, nil when it passed.
	Err error
}

// TestOAuth2 makes one client_credentials token request for tok, without
// saving anything. A token that works from a refresh token is not tested
// this way: the refresh would spend its refresh token.
func (m *Manager) TestOAuth2(ctx context.Context, tok *Token) OAuth2Test {
	if tok.OAuth2.needsRefreshToken() {
		return OAuth2Test{Err: fmt.Errorf("grant %s is tested when the token is saved", tok.OAuth2.Grant)}
	}
	g := m.requestToken(ctx, tok, "")
	if g.outcome == granted {
		return OAuth2Test{Status: 200, TokenPreview: Mask(g.access.Reveal()), ExpiresIn: g.expiresIn}
	}
	res := OAuth2Test{Err: g.err}
	var aerr *AuthError
	if errors.As(g.err, &aerr) {
		res.Status, res.Body = aerr.Status, aerr.Body
	}
	return res
}
