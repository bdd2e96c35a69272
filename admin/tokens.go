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
var viewOnly = []string{"fetched"}

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
// It returns the token as saved (secrets mask themselves when encoded).
//
// Errors: *Error with CodeInvalidToken (what is wrong with the token) or
// CodeTestFailed (why the test request failed); others are faults of the
// store.
func (a *Service) SaveToken(ctx context.Context, t *auth.Token) (*auth.Token, error) {
	var prev *auth.Token
	if events.ValidID(t.ID) {
		var err error
		prev, err = a.store.Get(ctx, t.ID)
		if err != nil && !errors.Is(err, auth.ErrTokenNotFound) {
			return nil, err
		}
	}
	keepMaskedSecrets(t, prev)
	t.Normalize()
	if err := t.Validate(); err != nil {
		return nil, &Error{Code: CodeInvalidToken, Message: err.Error()}
	}
	if t.Type == auth.TypeHTTP {
		if r := a.TestToken(ctx, t); !r.OK {
			return nil, &Error{Code: CodeTestFailed, Message: "not saved: the test request failed: " + r.Error}
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
	return t, nil
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

// keepMaskedSecrets puts back the stored secrets that an edit sent as
// their masks (the UI shows "****wxyz" and sends it back unchanged).
func keepMaskedSecrets(t, prev *auth.Token) {
	if prev == nil {
		return
	}
	same := func(v, old auth.Secret) bool { return auth.IsMask(string(v)) && string(v) == auth.Mask(string(old)) }
	if same(t.Value, prev.Value) {
		t.Value = prev.Value
	}
	if t.Request == nil || prev.Request == nil {
		return
	}
	for _, pair := range [][2]map[string]auth.Secret{{t.Request.Headers, prev.Request.Headers}, {t.Request.Params, prev.Request.Params}} {
		for k, v := range pair[0] {
			if old, ok := pair[1][k]; ok && same(v, old) {
				pair[0][k] = old
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
	if t.Type == auth.TypeText {
		return &TestReply{OK: true, TokenPreview: auth.Mask(t.Value.Reveal())}
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

// TokenView is a token as admins see it: secrets masked, and for an HTTP
// token what is known of its most recently fetched token.
type TokenView struct {
	*auth.Token
	Fetched *FetchedView `json:"fetched,omitempty"`
}

// FetchedView describes a fetched token without showing it.
type FetchedView struct {
	TokenPreview string `json:"token_preview"`
	FetchedAt    string `json:"fetched_at"`
	ExpiresAt    string `json:"expires_at,omitempty"`
}

func (a *Service) view(t *auth.Token) TokenView {
	v := TokenView{Token: t}
	if t.Type == auth.TypeHTTP && a.mgr != nil {
		if f := a.mgr.Peek(t.ID); f != nil && f.ConfigHash == t.ConfigHash() {
			v.Fetched = &FetchedView{TokenPreview: auth.Mask(f.Token.Reveal()), FetchedAt: events.FormatTime(f.FetchedAt)}
			if !f.ExpiresAt.IsZero() {
				v.Fetched.ExpiresAt = events.FormatTime(f.ExpiresAt)
			}
		}
	}
	return v
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
	return a.view(t), nil
}

// ListTokens returns every token as admins see it, sorted by id.
func (a *Service) ListTokens(ctx context.Context) ([]TokenView, error) {
	list, err := a.store.List(ctx)
	if err != nil {
		return nil, err
	}
	views := make([]TokenView, 0, len(list))
	for _, t := range list {
		views = append(views, a.view(t))
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
	return nil
}
