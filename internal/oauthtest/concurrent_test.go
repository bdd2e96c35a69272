package oauthtest_test

import (
	"context"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"customactions/internal/oauthtest"
)

// TestRotationWhileIntrospecting rotates several refresh token families at
// once while their access tokens are introspected, as the load tests do
// (an API checks every call while replicas refresh). Run with -race: fosite's
// memory store writes its refresh token map under the wrong mutex, so two
// rotations at once race, and the server must not let that show. Every rotation must also succeed and hand
// out a token the server then accepts.
func TestRotationWhileIntrospecting(t *testing.T) {
	srv := oauthtest.New(t, oauthtest.Options{})
	conf := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	var wg sync.WaitGroup
	for range 4 {
		refresh := srv.MintRefreshToken(t)
		wg.Go(func() {
			for range 25 {
				tok, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refresh}).Token()
				if err != nil {
					t.Errorf("refresh: %v", err)
					return
				}
				refresh = tok.RefreshToken
				for range 4 {
					if _, ok := srv.Subject(context.Background(), tok.AccessToken); !ok {
						t.Errorf("the server refused the access token it just issued")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if n := srv.ReusedRefreshTokens(); n != 0 {
		t.Errorf("%d refresh tokens reused", n)
	}
	if got := srv.Rotations(); got != 100 {
		t.Errorf("%d rotations, want 100", got)
	}
}
