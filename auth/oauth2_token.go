package auth

// The configuration of an oauth2 token (contract §10) and its validation.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"customactions/events"
)

// Grants of an oauth2 token.
const (
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantAuthorizationCode = "authorization_code"
)

// Client authentication of an oauth2 token (RFC 6749 §2.3.1).
const (
	ClientAuthBasic = "basic"
	ClientAuthBody  = "body"
)

// OAuth2 is the "oauth2" object of an oauth2 token.
type OAuth2 struct {
	Grant        string `json:"grant"`
	TokenURL     string `json:"token_url"`
	ClientID     string `json:"client_id"`
	ClientSecret Secret `json:"client_secret,omitempty"`
	// ClientAuth is basic (default) or body.
	ClientAuth  string            `json:"client_auth,omitempty"`
	Scopes      []string          `json:"scopes,omitempty"`
	ExtraParams map[string]string `json:"extra_params,omitempty"`
	// RefreshToken is a refresh token pasted by an admin. Saving the token
	// spends it (the test-before-save refreshes once) and stores the
	// rotated one in the token's connection record, so a saved token has
	// none here: a refresh token in two places could be sent twice.
	RefreshToken Secret `json:"refresh_token,omitempty"`
	AuthorizeURL string `json:"authorize_url,omitempty"`
	// AuthorizeParams are extra parameters of the authorization request
	// of the browser connect flow ({"access_type": "offline"}).
	AuthorizeParams map[string]string `json:"authorize_params,omitempty"`
	PerEndUser      bool              `json:"per_end_user,omitempty"`
	RevokeURL       string            `json:"revoke_url,omitempty"`
	// ExpiredStatuses are the action's statuses that mean "token expired":
	// the token is refreshed and the call retried once. Default [401].
	ExpiredStatuses []int `json:"expired_statuses,omitempty"`
}

// normalize fills the defaults of o.
func (o *OAuth2) normalize() {
	o.Grant = strings.ToLower(strings.TrimSpace(o.Grant))
	o.ClientAuth = strings.ToLower(strings.TrimSpace(o.ClientAuth))
	if o.ClientAuth == "" {
		o.ClientAuth = ClientAuthBasic
	}
	if len(o.ExpiredStatuses) == 0 {
		o.ExpiredStatuses = []int{http.StatusUnauthorized}
	}
}

// expired reports whether an action's status means the token expired.
func (o *OAuth2) expired(status int) bool { return slices.Contains(o.ExpiredStatuses, status) }

// needsRefreshToken reports whether the grant works from a refresh token.
func (o *OAuth2) needsRefreshToken() bool { return o.Grant != GrantClientCredentials }

func (t *Token) validateOAuth2() error {
	o := t.OAuth2
	if o == nil {
		return invalidf("an oauth2 token needs an oauth2 object (grant, token_url, client_id, ...)")
	}
	if t.Value != "" || t.Request != nil || t.TokenPath != "" {
		return invalidf("an oauth2 token has no value, request or token_path; its token comes from oauth2.token_url")
	}
	switch o.Grant {
	case GrantClientCredentials, GrantRefreshToken, GrantAuthorizationCode:
	case "":
		return invalidf("missing field oauth2.grant (client_credentials, refresh_token or authorization_code)")
	default:
		return invalidf("oauth2.grant %q must be client_credentials, refresh_token or authorization_code", o.Grant)
	}
	if o.TokenURL == "" {
		return invalidf("missing field oauth2.token_url")
	}
	if _, err := events.ParseHTTPURL(o.TokenURL); err != nil {
		return invalidf("oauth2.token_url %v", err)
	}
	if strings.TrimSpace(o.ClientID) == "" {
		return invalidf("missing field oauth2.client_id")
	}
	if o.ClientAuth != ClientAuthBasic && o.ClientAuth != ClientAuthBody {
		return invalidf("oauth2.client_auth %q must be basic or body", o.ClientAuth)
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return invalidf("oauth2.scopes: %q is not a scope (no spaces, quotes or backslashes)", s)
		}
	}
	for k := range o.ExtraParams {
		switch k {
		case "":
			return invalidf("oauth2.extra_params: a parameter needs a name")
		case "grant_type", "client_id", "client_secret", "refresh_token", "scope", "code", "code_verifier", "redirect_uri":
			return invalidf("oauth2.extra_params: %q is set by the grant; use the oauth2 field for it", k)
		}
	}
	for k := range o.AuthorizeParams {
		switch k {
		case "":
			return invalidf("oauth2.authorize_params: a parameter needs a name")
		case "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method":
			return invalidf("oauth2.authorize_params: %q is set by the connect flow; use the oauth2 field for it, if any", k)
		}
	}
	if len(o.AuthorizeParams) > 0 && o.Grant != GrantAuthorizationCode {
		return invalidf("oauth2.authorize_params is used by grant authorization_code only")
	}
	if strings.ContainsAny(string(o.RefreshToken), "\r\n") {
		return invalidf("oauth2.refresh_token must not contain a line break")
	}
	if o.Grant == GrantClientCredentials && o.RefreshToken != "" {
		return invalidf("oauth2.refresh_token is not used by grant client_credentials")
	}
	if o.Grant == GrantAuthorizationCode && o.AuthorizeURL == "" {
		return invalidf("missing field oauth2.authorize_url (grant authorization_code)")
	}
	for _, u := range []struct{ field, url string }{{"authorize_url", o.AuthorizeURL}, {"revoke_url", o.RevokeURL}} {
		if u.url == "" {
			continue
		}
		if _, err := events.ParseHTTPURL(u.url); err != nil {
			return invalidf("oauth2.%s %v", u.field, err)
		}
	}
	if o.PerEndUser && o.Grant != GrantAuthorizationCode {
		return invalidf("oauth2.per_end_user needs grant authorization_code: end users connect through the browser")
	}
	for _, s := range o.ExpiredStatuses {
		if s < 400 || s > 599 {
			return invalidf("oauth2.expired_statuses: %d is not an error status (400-599)", s)
		}
	}
	return nil
}

// oauth2Hash identifies what an access token of o was fetched with: the
// endpoint, the client and what was asked for.
func (o *OAuth2) hash() string {
	h := sha256.New()
	fmt.Fprintf(h, "oauth2\x00%s\x00%s\x00%s\x00%s\x00%s\x00", o.Grant, o.TokenURL, o.ClientID, o.ClientSecret.Reveal(), o.ClientAuth)
	fmt.Fprintf(h, "%s\x00", strings.Join(o.Scopes, " "))
	keys := make([]string, 0, len(o.ExtraParams))
	for k := range o.ExtraParams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, o.ExtraParams[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// connectionKey identifies what a refresh token belongs to: the token
// endpoint and the client. A refresh token is only sent with the same.
func (o *OAuth2) connectionKey() string {
	sum := sha256.Sum256([]byte(o.TokenURL + "\x00" + o.ClientID))
	return hex.EncodeToString(sum[:8])
}
