package auth

// The authenticated call with an oauth2 token.

import (
	"context"
	"errors"
)

// doOAuth2 signs attempt with the access token of tok, and after an
// expired status (401 unless the token lists others) refreshes it and
// retries once, as doFetched does for an HTTP token.
func (a *Authenticator) doOAuth2(ctx context.Context, tok *Token, ref Ref, attempt Attempt) (CallOutcome, error) {
	var out CallOutcome
	c, oc, err := a.mgr.oauthCurrent(ctx, workspace(tok), ref.OnBackgroundRefresh)
	out.noteOAuth(tok, c, oc, err)
	if err != nil {
		return out, oauthCallError(tok.ID, err)
	}
	out.Attempts = 1
	if !tok.OAuth2.expired(attempt(ctx, c.credential(tok))) {
		return out, nil
	}
	c, oc, err = a.mgr.oauthObtain(ctx, workspace(tok), c.Gen)
	oc.Waited = true
	out.noteOAuth(tok, c, oc, err)
	if err != nil {
		return out, oauthCallError(tok.ID, err)
	}
	out.Attempts, out.Retried = 2, true
	attempt(ctx, c.credential(tok))
	return out, nil
}

// oauthCallError is err as Do returns it: a reauthorization as it is, a
// failed refresh as a *RefreshError.
func oauthCallError(id string, err error) error {
	if errors.Is(err, ErrReauthorizationRequired) {
		return err
	}
	return &RefreshError{TokenID: id, Err: err}
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
