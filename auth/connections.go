package auth

// What admins see and do with the end users' connections of a
// per_end_user token (contract §11).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConnectionView describes the connection of one end user without showing
// a secret.
type ConnectionView struct {
	TokenID, EndUserID string
	OAuth2View
	// Unreadable is set when the record cannot be opened (a key that is no
	// longer configured): the end user must connect again.
	Unreadable bool
}

// errNoConnections: connections need a connections bucket.
func (m *Manager) connectionsBucket() (jetstream.KeyValue, error) {
	kv, ok := m.users.(jetstream.KeyValue)
	if !ok || kv == nil {
		return nil, errNoConnectionsBucket
	}
	return kv, nil
}

// Connections returns up to limit connections of the token tokenID (all of
// one end user when endUser is set), and whether there are more. A token
// may have millions: they are read from KV, none is kept.
func (m *Manager) Connections(ctx context.Context, tokenID, endUser string, limit int) ([]ConnectionView, bool, error) {
	kv, err := m.connectionsBucket()
	if err != nil {
		return nil, false, err
	}
	if endUser != "" {
		e, err := kv.Get(ctx, connName(tokenID, endUser))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read connection: %w", err)
		}
		return []ConnectionView{m.connectionView(e)}, false, nil
	}
	w, err := kv.Watch(ctx, tokenID+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, false, fmt.Errorf("list connections: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []ConnectionView
	for {
		select {
		case <-ctx.Done():
			return nil, false, fmt.Errorf("list connections: %w", ctx.Err())
		case e := <-w.Updates():
			if e == nil {
				return out, false, nil
			}
			if len(out) == limit {
				return out, true, nil
			}
			out = append(out, m.connectionView(e))
		}
	}
}

func (m *Manager) connectionView(e jetstream.KeyValueEntry) ConnectionView {
	tokenID, user := splitConnName(e.Key())
	v := ConnectionView{TokenID: tokenID, EndUserID: user}
	c, err := m.decodeOAuth(e.Key(), e.Value(), e.Revision())
	if err != nil {
		v.Unreadable = true
		v.Health = Health{Status: HealthReauthorizationRequired, LastError: "the connection cannot be read (encryption key?): the end user must connect again"}
		return v
	}
	v.OAuth2View = OAuth2View{Health: c.Health, AccessTokenPreview: Mask(c.Access.Reveal()), RefreshTokenPreview: Mask(c.Refresh.Reveal()),
		FetchedAt: c.FetchedAt, ExpiresAt: c.ExpiresAt}
	return v
}

// ConnectionDeleted says what DeleteConnection did.
type ConnectionDeleted struct {
	// Found is false when there was no connection.
	Found bool
	// Revoked is true when the revocation endpoint accepted the refresh
	// token (or, without one, the access token); RevokeError says why not
	// when revoke_url is set and it failed: the connection is deleted
	// here anyway.
	Revoked     bool
	RevokeError string
}

// DeleteConnection deletes the connection of endUser of tok ("" for the
// token's own connection), after revoking its refresh token (else its
// access token) at the token's revoke_url when one is set.
func (m *Manager) DeleteConnection(ctx context.Context, tok *Token, endUser string) (ConnectionDeleted, error) {
	name := connName(tok.ID, endUser)
	kv, key, err := m.connKV(name)
	if err != nil {
		return ConnectionDeleted{}, err
	}
	c, err := m.readOAuth(ctx, name)
	if err != nil && !errors.Is(err, ErrTokenUnreadable) {
		return ConnectionDeleted{}, err
	}
	var out ConnectionDeleted
	if c == nil && err == nil {
		return out, nil
	}
	out.Found = true
	if c != nil && tok.OAuth2 != nil && tok.OAuth2.RevokeURL != "" {
		secret, hint := c.Refresh, "refresh_token"
		if secret == "" {
			secret, hint = c.Access, "access_token"
		}
		if secret != "" {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			if rerr := m.revoke(rctx, tok, secret, hint); rerr != nil {
				out.RevokeError = rerr.Error()
			} else {
				out.Revoked = true
			}
			cancel()
		}
	}
	if err := kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return out, fmt.Errorf("delete connection of %s: %w", describeConn(name), err)
	}
	m.oauth.cacheFor(name).Drop(name)
	return out, nil
}

// DeleteConnections deletes every end user's connection of the token
// tokenID (the token was deleted), without revoking them, and returns how
// many it deleted.
func (m *Manager) DeleteConnections(ctx context.Context, tokenID string) (int, error) {
	kv, err := m.connectionsBucket()
	if err != nil {
		return 0, nil // none can exist
	}
	keys, err := kv.ListKeysFiltered(ctx, tokenID+".*")
	if err != nil {
		return 0, fmt.Errorf("list connections of token %s: %w", tokenID, err)
	}
	n := 0
	for k := range keys.Keys() {
		if err := kv.Purge(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			_ = keys.Stop()
			return n, fmt.Errorf("delete connections of token %s: %w", tokenID, err)
		}
		m.oauth.users.Drop(k)
		n++
	}
	return n, nil
}
