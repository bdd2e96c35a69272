package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"customactions/auth"
	"customactions/events"
)

// viewOnly are the fields of a token's reply that are not part of a token;
// a client may send a reply back as an edit.
var viewOnly = []string{"fetched", "status", "status_changed_at", "last_error"}

// decodeToken reads a token of a test or save request, strictly.
func decodeToken(data []byte) (*auth.Token, error) {
	var t auth.Token
	if err := decodeStrict(data, &t, viewOnly...); err != nil {
		return nil, err
	}
	return &t, nil
}

// SaveToken validates t, keeps the stored values of secrets that an edit
// sent back masked, tests an HTTP token's auth request, stores t and, when
// its type or auth configuration changed, drops its cached fetched token.
// An oauth2 token is tested by auth.Manager.SaveOAuth2 (a token request;
// a pasted refresh token is spent by it and the rotated one is kept in the
// token's connection, not in the token), which writes the connection and
// its health before the token is stored. It returns the token as saved
// (secrets mask themselves when encoded).
//
// Errors: *Error with CodeInvalidToken (what is wrong with the token) or
// CodeTestFailed (why the test request failed); others are faults of the
// store.
func (a *Service) SaveToken(ctx context.Context, t *auth.Token) (*auth.Token, error) {
	prev, err := a.stored(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	keepMaskedSecrets(t, prev)
	keepConnection(t)
	t.Normalize()
	if err := t.Validate(); err != nil {
		return nil, &Error{Code: CodeInvalidToken, Message: err.Error()}
	}
	switch t.Type {
	case auth.TypeHTTP:
		if r := a.TestToken(ctx, t); !r.OK {
			return nil, &Error{Code: CodeTestFailed, Message: "not saved: the test request failed: " + r.Error}
		}
	case auth.TypeOAuth2:
		if _, err := a.mgr.SaveOAuth2(ctx, t); errors.Is(err, auth.ErrInvalidToken) {
			return nil, &Error{Code: CodeInvalidToken, Message: err.Error()}
		} else if errors.Is(err, auth.ErrTestFailed) {
			return nil, &Error{Code: CodeTestFailed, Message: "not saved: " + err.Error()}
		} else if err != nil {
			return nil, err
		}
	}
	if _, err := a.store.Put(ctx, t); err != nil {
		return nil, err
	}
	if prev != nil && (prev.Type != t.Type || prev.ConfigHash() != t.ConfigHash()) {
		if err := a.mgr.Forget(ctx, t.ID); err != nil {
			a.log.Warn("drop cached fetched token", "token_id", t.ID, "err", err)
		}
	}
	if prev != nil && prev.Type == auth.TypeOAuth2 && t.Type != auth.TypeOAuth2 {
		if err := a.mgr.ForgetOAuth2(ctx, t.ID); err != nil {
			a.log.Warn("drop oauth2 connection", "token_id", t.ID, "err", err)
		}
	}
	return t, nil
}

// keepConnection drops a refresh token that an edit of an oauth2 token
// sent back masked: the token's connection is kept. A saved token holds no
// refresh token (its view shows the connection's, which rotates, so an
// older view's mask is as good), and a mask is never a refresh token.
func keepConnection(t *auth.Token) {
	if t.OAuth2 != nil && auth.IsMask(string(t.OAuth2.RefreshToken)) {
		t.OAuth2.RefreshToken = ""
	}
}

// ImportTokens saves the tokens of data, one token or an array of them,
// each exactly as SaveToken does. It stops at the first token refused.
func (a *Service) ImportTokens(ctx context.Context, data []byte) ([]*auth.Token, error) {
	var raws []json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, badJSON(err)
		}
	} else {
		raws = []json.RawMessage{data}
	}
	saved := make([]*auth.Token, 0, len(raws))
	for i, raw := range raws {
		t, err := decodeToken(raw)
		if err == nil {
			t, err = a.SaveToken(ctx, t)
		}
		if err != nil {
			return saved, fmt.Errorf("token %d of %d: %w", i+1, len(raws), err)
		}
		saved = append(saved, t)
	}
	return saved, nil
}

// stored returns the stored token of id, or nil when there is none (or the
// id is not valid, which validation then reports).
func (a *Service) stored(ctx context.Context, id string) (*auth.Token, error) {
	if !events.ValidID(id) {
		return nil, nil
	}
	prev, err := a.store.Get(ctx, id)
	if errors.Is(err, auth.ErrTokenNotFound) {
		return nil, nil
	}
	return prev, err
}

// keepMaskedSecrets puts back the stored secrets that an edit sent as
// their masks (the UI shows "****wxyz" and sends it back unchanged). Only
// values that were stored as secrets (masked in the reply) are put back:
// the others were shown in clear, so what the admin sends is the value.
func keepMaskedSecrets(t, prev *auth.Token) {
	if prev == nil {
		return
	}
	same := func(v, old auth.Secret) bool { return auth.IsMask(string(v)) && string(v) == auth.Mask(string(old)) }
	if same(t.Value, prev.Value) {
		t.Value = prev.Value
	}
	if t.OAuth2 != nil && prev.OAuth2 != nil && same(t.OAuth2.ClientSecret, prev.OAuth2.ClientSecret) {
		t.OAuth2.ClientSecret = prev.OAuth2.ClientSecret
	}
	if t.Request == nil || prev.Request == nil {
		return
	}
	for _, m := range []struct {
		values, old map[string]auth.Secret
		secret      func(string) bool
	}{{t.Request.Headers, prev.Request.Headers, prev.Request.HeaderSecret}, {t.Request.Params, prev.Request.Params, prev.Request.ParamSecret}} {
		for k, v := range m.values {
			if old, ok := m.old[k]; ok && m.secret(k) && same(v, old) {
				m.values[k] = old
			}
		}
	}
}

// TestReply is the reply of tokens.test.
type TestReply struct {
	OK           bool           `json:"ok"`
	HTTPStatus   int            `json:"http_status"`
	Response     *TestResponse  `json:"response"`
	TokenPreview string         `json:"token_preview"`
	ExpiresIn    int64          `json:"expires_in"`
	Error        string         `json:"error"`
	Token        *auth.Token    `json:"token,omitempty"`
	Details      map[string]any `json:"details,omitempty"`
}

// TestResponse is the auth response shown to the admin, secrets masked.
type TestResponse struct {
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
	Truncated bool              `json:"truncated"`
}

// TestToken performs the test of a valid token: a text token passes; an
// HTTP token's auth request must answer 2xx with a token at token_path
// (without token_path it only has to answer 2xx, so that the admin can
// pick the path from the response shown).
func (a *Service) TestToken(ctx context.Context, t *auth.Token) *TestReply {
	switch t.Type {
	case auth.TypeText:
		return &TestReply{OK: true, TokenPreview: auth.Mask(t.Value.Reveal())}
	case auth.TypeOAuth2:
		return a.testOAuth2(ctx, t)
	}
	res, err := a.fetcher.Test(ctx, t)
	if err != nil {
		return &TestReply{OK: false, Error: err.Error()}
	}
	r := &TestReply{HTTPStatus: res.Status, Response: &TestResponse{Headers: res.Headers, Body: res.Body, Truncated: res.Truncated}}
	switch {
	case res.Status < 200 || res.Status > 299:
		r.Error = fmt.Sprintf("the auth endpoint answered %d", res.Status)
	case t.TokenPath == "":
		r.OK = true
		r.Details = map[string]any{"hint": "the auth endpoint answered; set token_path to where the token is in this response, then test again"}
	case res.PathErr != nil:
		r.Error = fmt.Sprintf("token_path %q: %v", t.TokenPath, res.PathErr)
	default:
		r.OK = true
		r.TokenPreview = auth.Mask(res.Token.Reveal())
		r.ExpiresIn = int64(res.ExpiresIn / time.Second)
	}
	return r
}

// tokensTest runs the test of a token. An HTTP token may come without
// token_path: the admin sees the auth response first and picks the path.
func (a *Service) tokensTest(ctx context.Context, data []byte) (*TestReply, error) {
	t, err := decodeToken(data)
	if err != nil {
		return nil, err
	}
	// As for a save: a secret sent back masked means the stored one.
	prev, err := a.stored(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	keepMaskedSecrets(t, prev)
	t.Normalize()
	noPath := t.Type == auth.TypeHTTP && t.TokenPath == ""
	if noPath {
		t.TokenPath = "access_token" // a placeholder, for validation only
	}
	if err := t.Validate(); err != nil {
		return nil, &Error{Code: CodeInvalidToken, Message: err.Error()}
	}
	if noPath {
		t.TokenPath, t.ExpiresInPath = "", ""
	}
	return a.TestToken(ctx, t), nil
}

// TokenView is a token as admins see it: secrets masked, for an HTTP
// token what is known of its most recently fetched token, and for an
// oauth2 token its connection and health (contract §10).
type TokenView struct {
	*auth.Token
	Fetched         *FetchedView `json:"fetched,omitempty"`
	Status          string       `json:"status,omitempty"`
	StatusChangedAt string       `json:"status_changed_at,omitempty"`
	LastError       string       `json:"last_error,omitempty"`
}

// FetchedView describes a fetched token without showing it; for an oauth2
// token, also its connection's refresh token.
type FetchedView struct {
	TokenPreview        string `json:"token_preview"`
	FetchedAt           string `json:"fetched_at"`
	ExpiresAt           string `json:"expires_at,omitempty"`
	RefreshTokenPreview string `json:"refresh_token_preview,omitempty"`
}

func (a *Service) view(ctx context.Context, t *auth.Token) TokenView {
	v := TokenView{Token: t}
	if t.Type == auth.TypeOAuth2 && a.mgr != nil {
		c, ok, err := a.mgr.OAuth2View(ctx, t.ID)
		if err != nil {
			v.LastError = "connection unreadable: " + err.Error()
		}
		if !ok {
			return v
		}
		v.Status, v.LastError = c.Status, c.LastError
		if !c.ChangedAt.IsZero() {
			v.StatusChangedAt = events.FormatTime(c.ChangedAt)
		}
		v.Fetched = oauth2Fetched(c)
		return v
	}
	if t.Type == auth.TypeHTTP && a.mgr != nil {
		if f, _ := a.mgr.Fetched(ctx, t.ID); f != nil && f.ConfigHash == t.ConfigHash() {
			v.Fetched = &FetchedView{TokenPreview: auth.Mask(f.Token.Reveal()), FetchedAt: events.FormatTime(f.FetchedAt)}
			if !f.ExpiresAt.IsZero() {
				v.Fetched.ExpiresAt = events.FormatTime(f.ExpiresAt)
			}
		}
	}
	return v
}

// oauth2Fetched describes the tokens of a connection, nil when it has
// none.
func oauth2Fetched(c auth.OAuth2View) *FetchedView {
	if c.AccessTokenPreview == "" && c.RefreshTokenPreview == "" {
		return nil
	}
	f := &FetchedView{TokenPreview: c.AccessTokenPreview, RefreshTokenPreview: c.RefreshTokenPreview}
	if !c.FetchedAt.IsZero() {
		f.FetchedAt = events.FormatTime(c.FetchedAt)
	}
	if !c.ExpiresAt.IsZero() {
		f.ExpiresAt = events.FormatTime(c.ExpiresAt)
	}
	return f
}

// TokenView returns the token id as admins see it.
//
// Errors: *Error with CodeNotFound when there is no such token.
func (a *Service) TokenView(ctx context.Context, id string) (TokenView, error) {
	t, err := a.store.Get(ctx, id)
	if errors.Is(err, auth.ErrTokenNotFound) {
		return TokenView{}, errorf(CodeNotFound, "token %q does not exist", id)
	}
	if err != nil {
		return TokenView{}, err
	}
	return a.view(ctx, t), nil
}

// ListTokens returns every token as admins see it, sorted by id.
func (a *Service) ListTokens(ctx context.Context) ([]TokenView, error) {
	list, err := a.store.List(ctx)
	if err != nil {
		return nil, err
	}
	views := make([]TokenView, 0, len(list))
	for _, t := range list {
		views = append(views, a.view(ctx, t))
	}
	return views, nil
}

// DeleteToken deletes a token and its fetched token.
//
// Errors: *Error with CodeNotFound when there is no such token.
func (a *Service) DeleteToken(ctx context.Context, id string) error {
	if err := a.store.Delete(ctx, id); errors.Is(err, auth.ErrTokenNotFound) {
		return errorf(CodeNotFound, "token %q does not exist", id)
	} else if err != nil {
		return err
	}
	if err := a.mgr.Forget(ctx, id); err != nil {
		a.log.Warn("drop cached fetched token", "token_id", id, "err", err)
	}
	if err := a.mgr.ForgetOAuth2(ctx, id); err != nil {
		a.log.Warn("drop oauth2 connection", "token_id", id, "err", err)
	}
	if n, err := a.mgr.DeleteConnections(ctx, id); err != nil {
		a.log.Warn("delete end users' connections", "token_id", id, "deleted", n, "err", err)
	}
	return nil
}

// testOAuth2 is the test of an oauth2 token that does not save it: a
// client_credentials token fetches a token. A token that works from a
// refresh token is not refreshed: that would spend the refresh token
// (providers rotate them), so it is tested when it is saved.
func (a *Service) testOAuth2(ctx context.Context, t *auth.Token) *TestReply {
	if t.OAuth2.Grant != auth.GrantClientCredentials {
		return &TestReply{OK: true, Details: map[string]any{"hint": "a refresh token is spent by a refresh: it is tested when the token is saved"}}
	}
	res := a.mgr.TestOAuth2(ctx, t)
	r := &TestReply{OK: res.Err == nil, HTTPStatus: res.Status, TokenPreview: res.TokenPreview, ExpiresIn: int64(res.ExpiresIn / time.Second)}
	if res.Err != nil {
		r.Error = res.Err.Error()
	}
	if res.Body != "" {
		r.Response = &TestResponse{Body: res.Body, Headers: map[string]string{}}
	}
	return r
}
