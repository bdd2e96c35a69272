package oauthtest

import (
	"context"
	"net/http"
)

// revoke is the revocation endpoint (RFC 7009): the client authenticates
// and names a token; fosite revokes the access token and the refresh token
// of its grant.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithValue(r.Context(), revokingKey{}, true)
	rec := &statusRecorder{ResponseWriter: w}
	err := s.provider.NewRevocationRequest(ctx, r)
	s.provider.WriteRevocationResponse(ctx, rec, err)
	if rec.status == http.StatusOK {
		s.revocations.Add(1)
	}
}

// revokingKey marks the context of a revocation request, for the store.
type revokingKey struct{}

// revoking reports whether ctx is that of a revocation request: fosite's
// revocation handler reads and revokes through the same store methods as
// the refresh grant, and only the store can tell them apart.
func revoking(ctx context.Context) bool {
	v, _ := ctx.Value(revokingKey{}).(bool)
	return v
}
