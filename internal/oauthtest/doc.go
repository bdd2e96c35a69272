// Package oauthtest runs a real OAuth 2.0 authorization server for tests:
// Ory fosite (its compose package over an in-memory store) behind an
// httptest server on loopback, with refresh token rotation, and counters
// of what it saw: token requests, refresh tokens presented twice, token
// families revoked for a reused refresh token.
//
// fosite revokes the whole family of a refresh token when it is presented
// again after rotation (RFC 6819 §5.2.2.3), as the providers that rotate
// do: a test that finds ReusedRefreshTokens and FamiliesRevoked at zero has
// shown that no refresh token was sent twice.
//
// The server also runs the authorization_code flow as a browser sees it:
// its authorize endpoint shows a login page for the users of
// Options.Users, and redirects to the client's redirect URI with a code
// and the state, or with an error. PKCE with S256 is required of every
// client, as the providers that follow the OAuth 2.0 Security BCP do. A
// test drives the page with a browser, or with Login and Deny, which post
// the form as a browser would; it exchanges the code at TokenURL and may
// revoke a token at RevokeURL (RFC 7009). Subject tells which user a
// token belongs to.
package oauthtest
