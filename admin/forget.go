package admin

import (
	"context"
	"errors"

	"customactions/auth"
)

// ForgetToken drops the fetched token of the HTTP token id on every
// replica (auth.Manager.Forget), so the next call that uses it fetches a
// new one. It reports whether this replica knew a fetched token.
//
// An oauth2 token is refused: its access token and refresh token are one
// connection record, and the only way to drop it (auth.Manager.ForgetOAuth2)
// discards the refresh token too. Saving the token again gets a new access
// token and keeps the connection.
//
// Errors: *Error with CodeNotFound when there is no such token, or
// CodeBadRequest for a text or oauth2 token.
func (a *Service) ForgetToken(ctx context.Context, id string) (bool, error) {
	t, err := a.store.Get(ctx, id)
	if errors.Is(err, auth.ErrTokenNotFound) {
		return false, errorf(CodeNotFound, "token %q does not exist", id)
	}
	if err != nil {
		return false, err
	}
	switch t.Type {
	case auth.TypeText:
		return false, errorf(CodeBadRequest, "token %q is a text token: there is no fetched token to forget", id)
	case auth.TypeOAuth2:
		return false, errorf(CodeBadRequest, "token %q is an oauth2 token: its access token cannot be dropped without discarding its refresh token; "+
			"to get a new access token, save the token again (Edit, then Save: one token request, the connection is kept)", id)
	}
	f, err := a.mgr.Fetched(ctx, id)
	if err != nil {
		return false, err
	}
	had := f != nil
	if err := a.mgr.Forget(ctx, id); err != nil {
		return false, err
	}
	return had, nil
}
