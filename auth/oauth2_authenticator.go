package auth

// The authenticated call with an oauth2 token.

import (
	"context"
	"errors"
	"fmt"
)

// doOAuth2 signs attempt with the access token of tok, and after an
// expired status (401 unless the token lists others) refreshes it and
// retries once, as doFetched does for an HTTP token.
func (a *Authenticator) doOAuth2(ctx context.Context, tok *Token, ref Ref, attempt Attempt) (CallOutcome, error) {
	var out CallOutcome
	r := workspace(tok)
	if tok.OAuth2.PerEndUser {
		if ref.EndUserID == "" {
			return out, fmt.Errorf("token %s: %w", tok.ID, ErrEndUserRequired)
		}
		r.user = ref.EndUserID
	}
	c, oc, err := a.mgr.oauthCurrent(ctx, r, ref.OnBackgroundRefresh)
	out.noteOAuth(tok, c, oc, err)
	if err != nil {
		return out, a.oauthCallError(ctx, r, ref, err)
	}
	out.Attempts = 1
	if !tok.OAuth2.expired(attempt(ctx, c.credential(tok))) {
		return out, nil
	}
	c, oc, err = a.mgr.oauthObtain(ctx, r, c.Gen)
	oc.Waited = true
	out.noteOAuth(tok, c, oc, err)
	if err != nil {
		return out, a.oauthCallError(ctx, r, ref, err)
	}
	out.Attempts, out.Retried = 2, true
	attempt(ctx, c.credential(tok))
	return out, nil
}

// oauthCallError is err as Do returns it: for an end user who must
// connect (again), an *AuthorizationRequiredError with a new link; a
// reauthorization as it is; a failed refresh as a *RefreshError.
func (a *Authenticator) oauthCallError(ctx context.Context, r connRef, ref Ref, err error) error {
	if !errors.Is(err, ErrReauthorizationRequired) {
		return &RefreshError{TokenID: r.tok.ID, Err: err}
	}
	if r.user == "" {
		return err
	}
	links := a.mgr.connectLinks()
	if links == nil {
		return fmt.Errorf("%w (no connect link can be made: the public URL of the service is not set)", err)
	}
	reason := reasonNotConnected
	var re *reauthorization
	if errors.As(err, &re) {
		reason = re.reason
	}
	link, lerr := links.Link(ctx, ConnectRequest{TokenID: r.tok.ID, EndUserID: r.user, TriggerID: ref.TriggerID, ActionID: ref.ActionID})
	if lerr != nil {
		return fmt.Errorf("end user %s must connect token %s, and no link could be made: %w", r.user, r.tok.ID, lerr)
	}
	return &AuthorizationRequiredError{TokenID: r.tok.ID, EndUserID: r.user, URL: link, Reason: reason}
}

// noteOAuth records what getting one access token took.
func (out *CallOutcome) noteOAuth(tok *Token, c *oauthConn, oc Outcome, err error) {
	if oc.Waited {
		out.Refreshed = true
	}
	if oc.Fetched && err == nil {
		out.Fetched = c.refreshReport(tok.ID)
	}
}

// credential signs with the access token of c; it redacts the secrets of
// tok and of c (access and refresh token).
func (c *oauthConn) credential(tok *Token) Credential {
	return Credential{header: tok.Header, value: Secret(tok.Prefix + c.Access.Reveal()),
		redact: []*Redactor{tok.redactor(), c.redactor()}}
}
