package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"customactions/auth"
	"customactions/breaker"
	"customactions/events"
)

// Error codes of admin replies.
const (
	AdminBadRequest   = "bad_request"
	AdminInvalidToken = "invalid_token"
	AdminNotFound     = "not_found"
	AdminTestFailed   = "token_test_failed"
	AdminInternal     = "internal"
	AdminUnknown      = "unknown_request"
)

// AdminQueue is the queue group of admin requests: any replica answers.
const AdminQueue = "actions-admin"

// Breakers is what the admin requests need of the breaker;
// *breaker.Breaker satisfies it.
type Breakers interface {
	List(ctx context.Context) ([]breaker.Status, error)
	Reset(ctx context.Context, actionID string) (breaker.Status, error)
}

// Admin answers the admin requests of the contract (tokens and breakers).
type Admin struct {
	subjects events.Subjects
	store    *auth.Store
	mgr      *auth.Manager
	fetcher  *auth.Fetcher
	breakers Breakers
	log      *slog.Logger
}

// NewAdmin returns an Admin; breakers may be nil (the breaker requests then
// answer an error).
func NewAdmin(prefix string, store *auth.Store, mgr *auth.Manager, fetcher *auth.Fetcher, breakers Breakers, log *slog.Logger) *Admin {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Admin{subjects: events.NewSubjects(prefix), store: store, mgr: mgr, fetcher: fetcher, breakers: breakers, log: log}
}

// Subscribe serves admin requests on nc in the queue group until the
// subscription is drained.
func (a *Admin) Subscribe(nc *nats.Conn) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(a.subjects.AdminWildcard(), AdminQueue, func(m *nats.Msg) {
		go a.serve(m) // a token test may take seconds: do not hold up the others
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe admin requests: %w", err)
	}
	return sub, nil
}

func (a *Admin) serve(m *nats.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	verb := strings.TrimPrefix(m.Subject, a.subjects.Prefix+".admin.")
	reply, aerr := a.Handle(ctx, verb, m.Data)
	var data []byte
	if aerr != nil {
		data, _ = json.Marshal(map[string]any{"error": aerr})
		a.log.Info("admin request refused", "request", verb, "code", aerr.Code, "message", aerr.Message)
	} else {
		data, _ = json.Marshal(reply)
		a.log.Info("admin request served", "request", verb)
	}
	if m.Reply != "" {
		_ = m.Respond(data)
	}
}

// Handle answers one admin request: verb is "tokens.save", "breakers.list"
// and so on, data its JSON body. The reply is JSON-encodable; secrets in it
// are masked.
func (a *Admin) Handle(ctx context.Context, verb string, data []byte) (any, *events.Error) {
	switch verb {
	case "tokens.test":
		return a.tokensTest(ctx, data)
	case "tokens.save":
		return a.tokensSave(ctx, data)
	case "tokens.get":
		return a.tokensGet(ctx, data)
	case "tokens.list":
		return a.tokensList(ctx)
	case "tokens.delete":
		return a.tokensDelete(ctx, data)
	case "breakers.list":
		if a.breakers == nil {
			return nil, &events.Error{Code: AdminInternal, Message: "the circuit breaker is not enabled"}
		}
		list, err := a.breakers.List(ctx)
		if err != nil {
			return nil, internal(err)
		}
		if list == nil {
			list = []breaker.Status{}
		}
		return map[string]any{"breakers": list}, nil
	case "breakers.reset":
		var req struct {
			ActionID string `json:"action_id"`
		}
		if err := decodeStrict(data, &req); err != nil {
			return nil, err
		}
		if !events.ValidID(req.ActionID) {
			return nil, &events.Error{Code: AdminBadRequest, Message: fmt.Sprintf("action_id %q must match ^[A-Za-z0-9_-]{1,128}$", req.ActionID)}
		}
		if a.breakers == nil {
			return nil, &events.Error{Code: AdminInternal, Message: "the circuit breaker is not enabled"}
		}
		st, err := a.breakers.Reset(ctx, req.ActionID)
		if err != nil {
			return nil, internal(err)
		}
		return st, nil
	default:
		return nil, &events.Error{Code: AdminUnknown, Message: fmt.Sprintf("unknown admin request %q; see the contract, section 8", verb)}
	}
}

func internal(err error) *events.Error {
	return &events.Error{Code: AdminInternal, Message: err.Error()}
}

func decodeStrict(data []byte, v any) *events.Error {
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte("{}")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &events.Error{Code: AdminBadRequest, Message: "request is not valid JSON: " + err.Error()}
	}
	return nil
}

// decodeToken reads, normalizes and validates a token of a test or save
// request.
func decodeToken(data []byte) (*auth.Token, *events.Error) {
	var t auth.Token
	if err := decodeStrict(data, &t); err != nil {
		return nil, err
	}
	t.Normalize()
	if err := t.Validate(); err != nil {
		return nil, &events.Error{Code: AdminInvalidToken, Message: err.Error()}
	}
	return &t, nil
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

// test performs the token's test: a text token is valid once decoded; an
// HTTP token's auth request must answer 2xx with a token at token_path.
func (a *Admin) test(ctx context.Context, t *auth.Token) *TestReply {
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
// token_path: the admin sees the auth response first and picks the path
// from it, so the test then only checks that the endpoint answers 2xx.
func (a *Admin) tokensTest(ctx context.Context, data []byte) (any, *events.Error) {
	var probe struct {
		Type      string `json:"type"`
		TokenPath string `json:"token_path"`
	}
	_ = json.Unmarshal(data, &probe)
	noPath := strings.EqualFold(strings.TrimSpace(probe.Type), auth.TypeHTTP) && probe.TokenPath == ""
	if noPath {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err == nil {
			m["token_path"] = "access_token" // a placeholder for validation only
			data, _ = json.Marshal(m)
		}
	}
	t, aerr := decodeToken(data)
	if aerr != nil {
		return nil, aerr
	}
	if noPath {
		t.TokenPath, t.ExpiresInPath = "", ""
	}
	r := a.test(ctx, t)
	if noPath && r.OK {
		r.Details = map[string]any{"hint": "the auth endpoint answered; set token_path to where the token is in this response, then test again"}
	}
	return r, nil
}

func (a *Admin) tokensSave(ctx context.Context, data []byte) (any, *events.Error) {
	var t auth.Token
	if err := decodeStrict(data, &t); err != nil {
		return nil, err
	}
	prev, err := a.store.Get(ctx, t.ID)
	if err != nil && !errors.Is(err, auth.ErrTokenNotFound) && events.ValidID(t.ID) {
		return nil, internal(err)
	}
	keepMaskedSecrets(&t, prev)
	t.Normalize()
	if err := t.Validate(); err != nil {
		return nil, &events.Error{Code: AdminInvalidToken, Message: err.Error()}
	}
	if t.Type == auth.TypeHTTP {
		if r := a.test(ctx, &t); !r.OK {
			return nil, &events.Error{Code: AdminTestFailed, Message: "not saved: the test request failed: " + r.Error}
		}
	}
	if _, err := a.store.Put(ctx, &t); err != nil {
		return nil, internal(err)
	}
	if prev != nil && (prev.Type != t.Type || prev.ConfigHash() != t.ConfigHash()) {
		if err := a.mgr.Forget(ctx, t.ID); err != nil {
			a.log.Warn("drop cached fetched token", "token_id", t.ID, "err", err)
		}
	}
	return &t, nil
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

type idRequest struct {
	ID string `json:"id"`
}

func (a *Admin) decodeID(data []byte) (string, *events.Error) {
	var req idRequest
	if err := decodeStrict(data, &req); err != nil {
		return "", err
	}
	if !events.ValidID(req.ID) {
		return "", &events.Error{Code: AdminBadRequest, Message: fmt.Sprintf("id %q must match ^[A-Za-z0-9_-]{1,128}$", req.ID)}
	}
	return req.ID, nil
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

func (a *Admin) view(t *auth.Token) TokenView {
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

func (a *Admin) tokensGet(ctx context.Context, data []byte) (any, *events.Error) {
	id, aerr := a.decodeID(data)
	if aerr != nil {
		return nil, aerr
	}
	t, err := a.store.Get(ctx, id)
	if errors.Is(err, auth.ErrTokenNotFound) {
		return nil, &events.Error{Code: AdminNotFound, Message: fmt.Sprintf("token %q does not exist", id)}
	}
	if err != nil {
		return nil, internal(err)
	}
	return a.view(t), nil
}

func (a *Admin) tokensList(ctx context.Context) (any, *events.Error) {
	list, err := a.store.List(ctx)
	if err != nil {
		return nil, internal(err)
	}
	views := make([]TokenView, 0, len(list))
	for _, t := range list {
		views = append(views, a.view(t))
	}
	return map[string]any{"tokens": views}, nil
}

func (a *Admin) tokensDelete(ctx context.Context, data []byte) (any, *events.Error) {
	id, aerr := a.decodeID(data)
	if aerr != nil {
		return nil, aerr
	}
	if err := a.store.Delete(ctx, id); errors.Is(err, auth.ErrTokenNotFound) {
		return nil, &events.Error{Code: AdminNotFound, Message: fmt.Sprintf("token %q does not exist", id)}
	} else if err != nil {
		return nil, internal(err)
	}
	if err := a.mgr.Forget(ctx, id); err != nil {
		a.log.Warn("drop cached fetched token", "token_id", id, "err", err)
	}
	return map[string]bool{"ok": true}, nil
}
