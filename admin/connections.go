package admin

// Connections of authorization_code tokens (contract §11): the end users'
// connections of a per_end_user token, listed and deleted, and the link
// that connects a workspace-wide token.

import (
	"context"
	"errors"

	"customactions/auth"
	"customactions/events"
)

// WithConnector makes connect links (tokens.connect) with c; without it
// tokens.connect answers that the service has no public URL.
func WithConnector(c *auth.Connector) Option { return func(a *Service) { a.connector = c } }

// OnConnectionDeleted sets what hears of every connection deleted by an
// admin (the log event connection_deleted).
func OnConnectionDeleted(f func(tokenID, endUserID string, d auth.ConnectionDeleted)) Option {
	return func(a *Service) { a.onDeleted = f }
}

// ConnectionView is a connection as admins see it: status and previews,
// no secret.
type ConnectionView struct {
	TokenID         string       `json:"token_id"`
	EndUserID       string       `json:"end_user_id"`
	Status          string       `json:"status"`
	StatusChangedAt string       `json:"status_changed_at,omitempty"`
	LastError       string       `json:"last_error,omitempty"`
	Fetched         *FetchedView `json:"fetched,omitempty"`
}

// ConnectionList is the reply of connections.list.
type ConnectionList struct {
	Connections []ConnectionView `json:"connections"`
	// More is true when the token has more connections than the limit.
	More bool `json:"more"`
}

// ListRequest is the body of connections.list.
type ListRequest struct {
	TokenID string `json:"token_id"`
	// EndUserID, when set, asks for that end user's connection only.
	EndUserID string `json:"end_user_id,omitempty"`
	// Limit is how many to list: 100 by default, at most 1000.
	Limit int `json:"limit,omitempty"`
}

// connectionToken returns the authorization_code token id, per_end_user
// when perUser.
func (a *Service) connectionToken(ctx context.Context, id string) (*auth.Token, error) {
	t, err := a.store.Get(ctx, id)
	if errors.Is(err, auth.ErrTokenNotFound) {
		return nil, errorf(CodeNotFound, "token %q does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	if t.Type != auth.TypeOAuth2 || t.OAuth2.Grant != auth.GrantAuthorizationCode {
		return nil, errorf(CodeBadRequest, "token %q is not an oauth2 token with grant authorization_code: it has no connections", id)
	}
	return t, nil
}

// ListConnections answers connections.list: the end users' connections
// of a per_end_user token, or the workspace connection of another
// authorization_code token (end_user_id "").
func (a *Service) ListConnections(ctx context.Context, req ListRequest) (*ConnectionList, error) {
	if !events.ValidID(req.TokenID) {
		return nil, errorf(CodeBadRequest, "token_id %q must match ^[A-Za-z0-9_-]{1,128}$", req.TokenID)
	}
	if req.EndUserID != "" && !events.ValidID(req.EndUserID) {
		return nil, errorf(CodeBadRequest, "end_user_id %q must match ^[A-Za-z0-9_-]{1,128}$", req.EndUserID)
	}
	switch {
	case req.Limit == 0:
		req.Limit = 100
	case req.Limit < 0 || req.Limit > 1000:
		return nil, errorf(CodeBadRequest, "limit %d must be from 1 to 1000 (0 for 100)", req.Limit)
	}
	t, err := a.connectionToken(ctx, req.TokenID)
	if err != nil {
		return nil, err
	}
	out := &ConnectionList{Connections: []ConnectionView{}}
	if !t.OAuth2.PerEndUser {
		if req.EndUserID != "" {
			return nil, errorf(CodeBadRequest, "token %q is workspace-wide: it has no end users' connections", t.ID)
		}
		v, ok, err := a.mgr.OAuth2View(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Connections = append(out.Connections, connectionView(auth.ConnectionView{TokenID: t.ID, OAuth2View: v}))
		}
		return out, nil
	}
	list, more, err := a.mgr.Connections(ctx, t.ID, req.EndUserID, req.Limit)
	if err != nil {
		return nil, err
	}
	for _, c := range list {
		out.Connections = append(out.Connections, connectionView(c))
	}
	out.More = more
	return out, nil
}

func connectionView(c auth.ConnectionView) ConnectionView {
	v := ConnectionView{TokenID: c.TokenID, EndUserID: c.EndUserID, Status: c.Status, LastError: c.LastError}
	if !c.ChangedAt.IsZero() {
		v.StatusChangedAt = events.FormatTime(c.ChangedAt)
	}
	v.Fetched = oauth2Fetched(c.OAuth2View)
	return v
}

// DeleteReply is the reply of connections.delete.
type DeleteReply struct {
	OK bool `json:"ok"`
	// Revoked says whether revoke_url accepted the revocation; RevokeError
	// why not (the connection is deleted here anyway).
	Revoked     bool   `json:"revoked"`
	RevokeError string `json:"revoke_error,omitempty"`
}

// DeleteConnection answers connections.delete: the connection of an end
// user ("" for the workspace connection of a workspace-wide token) is
// revoked at revoke_url when set, and deleted.
func (a *Service) DeleteConnection(ctx context.Context, tokenID, endUserID string) (*DeleteReply, error) {
	if !events.ValidID(tokenID) {
		return nil, errorf(CodeBadRequest, "token_id %q must match ^[A-Za-z0-9_-]{1,128}$", tokenID)
	}
	t, err := a.connectionToken(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	switch {
	case t.OAuth2.PerEndUser && endUserID == "":
		return nil, errorf(CodeBadRequest, "missing field end_user_id: token %q has end users' connections", tokenID)
	case !t.OAuth2.PerEndUser && endUserID != "":
		return nil, errorf(CodeBadRequest, "token %q is workspace-wide: leave end_user_id out to delete its connection", tokenID)
	case endUserID != "" && !events.ValidID(endUserID):
		return nil, errorf(CodeBadRequest, "end_user_id %q must match ^[A-Za-z0-9_-]{1,128}$", endUserID)
	}
	d, err := a.mgr.DeleteConnection(ctx, t, endUserID)
	if err != nil {
		return nil, err
	}
	if !d.Found {
		if endUserID == "" {
			return nil, errorf(CodeNotFound, "token %q has no connection", tokenID)
		}
		return nil, errorf(CodeNotFound, "token %q has no connection for end user %q", tokenID, endUserID)
	}
	if a.onDeleted != nil {
		a.onDeleted(tokenID, endUserID, d)
	}
	return &DeleteReply{OK: true, Revoked: d.Revoked, RevokeError: d.RevokeError}, nil
}

// ConnectReply is the reply of tokens.connect.
type ConnectReply struct {
	AuthorizationURL string `json:"authorization_url"`
	ExpiresInS       int64  `json:"expires_in_s"`
}

// ConnectToken answers tokens.connect: a single-use link that connects
// the workspace-wide authorization_code token id when an admin opens it.
func (a *Service) ConnectToken(ctx context.Context, id string) (*ConnectReply, error) {
	t, err := a.connectionToken(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.OAuth2.PerEndUser {
		return nil, errorf(CodeBadRequest, "token %q has per-end-user connections: each end user connects through the link in the result of their trigger", id)
	}
	if a.connector == nil {
		return nil, errorf(CodeBadRequest, "connecting needs ACTIONS_PUBLIC_URL: the URL at which browsers reach this service's HTTP server")
	}
	link, err := a.connector.Link(ctx, auth.ConnectRequest{TokenID: id})
	if err != nil {
		return nil, err
	}
	return &ConnectReply{AuthorizationURL: link, ExpiresInS: int64(a.connector.TTL().Seconds())}, nil
}
