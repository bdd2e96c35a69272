package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrUnsupportedType is wrapped by Authenticator.Do when a stored token
// has a type this build cannot use.
var ErrUnsupportedType = errors.New("token type not supported")

// Ref names the credential that signs a call.
type Ref struct {
	// TokenID is the token of the trigger; empty means no credential.
	TokenID string
	// EndUserID is the trigger's end user: a per_end_user token calls as
	// them (contract §11); other tokens ignore it.
	EndUserID string
	// TriggerID and ActionID name the trigger in a connect link it asks
	// for, so the connection event can name it.
	TriggerID, ActionID string
	// OnBackgroundRefresh, when set, hears of a proactive refresh that this
	// call started and nobody waited for (it runs on another goroutine,
	// after the call may have ended).
	OnBackgroundRefresh func(Refresh)
}

// Refresh is one auth request made for a token, as a caller reports it:
// token_refreshed when Err is nil, token_refresh_failed otherwise.
type Refresh struct {
	TokenID string
	// Preview is the new token masked; Revision and ExpiresAt describe it.
	Preview   string
	Revision  uint64
	ExpiresAt time.Time
	// Err is why the auth request failed (an *AuthError or an error
	// wrapping ErrNotInResponse).
	Err error
}

// CallOutcome says what authenticating a call took.
type CallOutcome struct {
	// Attempts is how many times the action was called: 1, or 2 after a
	// 401 and a refresh.
	Attempts int
	// Refreshed is true when the call waited for a new token (fetched by
	// it, by another caller or by another replica) instead of using the one
	// already at hand.
	Refreshed bool
	// Retried is true when the first attempt was answered 401 and the
	// second used a refreshed token: a 401 from it is final.
	Retried bool
	// Fetched is the auth request this call made itself, if any: the
	// caller reports it once, where other callers only waited.
	Fetched *Refresh
}

// Attempt makes one call of the action, signed with cred (cred.Sign last,
// so nothing overrides it), and returns the HTTP status it got, 0 when no
// response came.
type Attempt func(ctx context.Context, cred Credential) (status int)

// Credential signs the attempts of one call. The zero Credential signs
// nothing and redacts nothing.
type Credential struct {
	header string
	value  Secret
	redact []*Redactor
}

// Sign sets the credential's header on h.
func (c Credential) Sign(h http.Header) {
	if c.header != "" {
		h.Set(c.header, c.value.Reveal())
	}
}

// Header is the name of the header Sign sets, "" when none: a header to
// drop when the action redirects to another host.
func (c Credential) Header() string { return c.header }

// Redact returns s with the credential's secrets (the text token's value
// or the fetched token) masked in every encoding a Redactor knows: for
// what an action sends back, which may echo the token.
func (c Credential) Redact(s string) string {
	for _, r := range c.redact {
		s = r.String(s)
	}
	return s
}

// Lookahead is how many bytes past a cap a caller should read before it
// redacts and cuts, so that a secret straddling the cap is recognized in
// full and masked, not left in part.
func (c Credential) Lookahead() int {
	n := 0
	for _, r := range c.redact {
		n = max(n, r.Lookahead())
	}
	return n
}

// Redacts reports whether Redact can change anything.
func (c Credential) Redacts() bool { return len(c.redact) > 0 }

// RefreshError is returned by Authenticator.Do when the token of a call
// could not be fetched or refreshed. Err is an *AuthError, an error
// wrapping ErrNotInResponse, netguard.ErrNotAllowed (the auth endpoint's
// address is refused) or the context's error; none says anything secret.
type RefreshError struct {
	TokenID string
	Err     error
}

func (e *RefreshError) Error() string { return "token " + e.TokenID + ": " + e.Err.Error() }

func (e *RefreshError) Unwrap() error { return e.Err }

// Authenticator signs action calls with the token a trigger names, the way
// x/oauth2's Transport signs requests: the caller hands over the call and
// never sees what kind of credential signs it or its value. A text token
// signs every attempt with its value; an HTTP Request token with its most
// recently fetched token, and after a 401 with a refreshed one, once.
type Authenticator struct {
	store *Store
	mgr   *Manager
}

// NewAuthenticator returns an Authenticator over the token store and the
// fetched-token manager.
func NewAuthenticator(store *Store, mgr *Manager) *Authenticator {
	return &Authenticator{store: store, mgr: mgr}
}

// ErrEndUserRequired is wrapped by Do when the token has per-end-user
// connections and the call names no end user: the trigger is invalid.
var ErrEndUserRequired = errors.New("the token acts as an end user: the trigger must name end_user.id")

// AuthorizationRequiredError is returned by Do when the end user of a call
// has no usable connection (none yet, or it needs reauthorization): no
// call was made; URL is a single-use link for them to connect.
type AuthorizationRequiredError struct {
	TokenID, EndUserID string
	URL                string
	// Reason says why (not connected, or the refusal that ended it).
	Reason string
}

func (e *AuthorizationRequiredError) Error() string {
	return fmt.Sprintf("end user %s must connect token %s: %s", e.EndUserID, e.TokenID, e.Reason)
}

// Do runs attempt signed with the credential of ref, and once more with a
// refreshed token when the credential can be refreshed and the first
// attempt was answered 401.
//
// Errors: ErrTokenNotFound, ErrTokenUnreadable and ErrUnsupportedType
// (wrapped, the action was not called); ErrReauthorizationRequired
// (wrapped) when an oauth2 token needs reauthorization (no call to the
// action, none to the token endpoint unless this call's own refresh was
// refused); a *RefreshError when a token could not be obtained (the action
// may have been called once); anything else is a fault of the token store
// (KV) and worth retrying later.
func (a *Authenticator) Do(ctx context.Context, ref Ref, attempt Attempt) (CallOutcome, error) {
	if ref.TokenID == "" {
		attempt(ctx, Credential{})
		return CallOutcome{Attempts: 1}, nil
	}
	tok, err := a.store.Get(ctx, ref.TokenID)
	if err != nil {
		return CallOutcome{}, err
	}
	switch tok.Type {
	case TypeText:
		attempt(ctx, tok.credential(tok.Value, nil))
		return CallOutcome{Attempts: 1}, nil
	case TypeHTTP:
		return a.doFetched(ctx, tok, ref, attempt)
	case TypeOAuth2:
		return a.doOAuth2(ctx, tok, ref, attempt)
	}
	return CallOutcome{}, fmt.Errorf("token %q has type %q: %w", tok.ID, tok.Type, ErrUnsupportedType)
}

func (a *Authenticator) doFetched(ctx context.Context, tok *Token, ref Ref, attempt Attempt) (CallOutcome, error) {
	var out CallOutcome
	f, oc, err := a.mgr.currentFor(ctx, tok, ref.OnBackgroundRefresh)
	out.note(tok, f, oc, err)
	if err != nil {
		return out, &RefreshError{TokenID: tok.ID, Err: err}
	}
	out.Attempts = 1
	if attempt(ctx, tok.credential(f.Token, f)) != http.StatusUnauthorized {
		return out, nil
	}
	f, oc, err = a.mgr.Refresh(ctx, tok, f)
	oc.Waited = true
	out.note(tok, f, oc, err)
	if err != nil {
		return out, &RefreshError{TokenID: tok.ID, Err: err}
	}
	out.Attempts, out.Retried = 2, true
	attempt(ctx, tok.credential(f.Token, f))
	return out, nil
}

// note records what getting one token took.
func (out *CallOutcome) note(tok *Token, f *Fetched, oc Outcome, err error) {
	if oc.Waited {
		out.Refreshed = true
	}
	if oc.Fetched && err == nil {
		out.Fetched = f.refresh(tok.ID)
	}
}

// refresh describes f as a successful Refresh of token id.
func (f *Fetched) refresh(id string) *Refresh {
	return &Refresh{TokenID: id, Preview: Mask(f.Token.Reveal()), Revision: f.Revision, ExpiresAt: f.ExpiresAt}
}

// credential signs with the token value v of t (f is the fetched token v
// comes from, nil for a text token).
func (t *Token) credential(v Secret, f *Fetched) Credential {
	c := Credential{header: t.Header, value: Secret(t.Prefix + v.Reveal())}
	if f != nil {
		c.redact = []*Redactor{f.redactor()}
	} else {
		c.redact = []*Redactor{t.redactor()}
	}
	return c
}

// redactor masks the responseSecrets of t in what an action sends back. A
// token read from the store keeps its Redactor (tokens from the store are
// shared and never changed).
func (t *Token) redactor() *Redactor {
	if t.redact != nil {
		return t.redact()
	}
	return NewRedactor(t.responseSecrets()...)
}

// redactor masks the fetched token, built once per fetched token.
func (f *Fetched) redactor() *Redactor {
	f.redactOnce.Do(func() { f.redact = NewRedactor(f.Token.Reveal()) })
	return f.redact
}
