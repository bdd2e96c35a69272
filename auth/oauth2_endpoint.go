package auth

// Requests to the token endpoint of an oauth2 token, made with x/oauth2
// over the Fetcher's (netguard-guarded) client, and what their outcome
// means for the refresh token that was sent.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"customactions/internal/netguard"
)

// grantOutcome classifies the outcome of a token request.
type grantOutcome int

const (
	// granted: a new access token (and maybe a new refresh token).
	granted grantOutcome = iota
	// refused: the endpoint answered an error that a retry cannot fix
	// (invalid_grant, invalid_client, unauthorized_client, any 4xx).
	refused
	// transient: the endpoint answered 5xx or 429, or the request was not
	// sent (dial, DNS, TLS): a refresh token sent, if any, is not spent.
	transient
	// unanswered: the request was sent and no usable answer came (timeout,
	// connection reset, an answer that cannot be read): a refresh token
	// sent may have been spent.
	unanswered
)

// grant is the outcome of one token request.
type grant struct {
	outcome grantOutcome
	access  Secret
	// refresh is the refresh token to keep: the new one, or the one sent
	// when the answer had none; rotated says which.
	refresh   Secret
	rotated   bool
	expiresIn time.Duration
	// err says why it failed (an *AuthError when the endpoint answered),
	// with every secret masked.
	err error
	// code is the OAuth error code of a refusal ("invalid_grant").
	code string
}

// endpointContext is the context of one request to a token endpoint: the
// Fetcher's timeout and guarded client (for x/oauth2), and sent, which
// says whether the request was written (a refresh token sent may have been
// spent).
func (m *Manager) endpointContext(ctx context.Context) (context.Context, context.CancelFunc, *atomic.Bool) {
	ctx, cancel := context.WithTimeout(ctx, m.fetcher.timeout)
	sent := &atomic.Bool{}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			sent.Store(true)
		}
	}})
	return context.WithValue(ctx, oauth2.HTTPClient, m.fetcher.client), cancel, sent
}

// requestToken makes one token request for tok: a refresh with refresh
// when it is set, otherwise client_credentials. Scopes and extra_params go
// with every request.
func (m *Manager) requestToken(ctx context.Context, tok *Token, refresh Secret) grant {
	o := tok.OAuth2
	ctx, cancel, sent := m.endpointContext(ctx)
	defer cancel()

	params := url.Values{}
	for k, v := range o.ExtraParams {
		params.Set(k, v)
	}
	if refresh != "" {
		// clientcredentials lets grant_type be replaced, so a refresh goes
		// out with the same client authentication, scopes and
		// extra_params; x/oauth2 keeps the refresh token sent when the
		// answer has none.
		params.Set("grant_type", "refresh_token")
		params.Set("refresh_token", refresh.Reveal())
	}
	cfg := clientcredentials.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), TokenURL: o.TokenURL,
		Scopes: o.Scopes, EndpointParams: params, AuthStyle: oauth2.AuthStyleInHeader}
	if o.ClientAuth == ClientAuthBody {
		cfg.AuthStyle = oauth2.AuthStyleInParams
	}
	red := NewRedactor(append(tok.Secrets(), refresh.Reveal())...)
	t, err := cfg.Token(ctx)
	g := grantOf(t, err, sent.Load(), red, tok, "token request")
	g.rotated = g.outcome == granted && refresh != "" && g.refresh != refresh
	return g
}

// exchangeCode exchanges an authorization code of tok for its first access
// and refresh tokens, with the PKCE verifier and the redirect URI the
// authorization request named (RFC 6749 §4.1.3, RFC 7636 §4.5).
func (m *Manager) exchangeCode(ctx context.Context, tok *Token, code, verifier Secret, redirectURI string) grant {
	o := tok.OAuth2
	ctx, cancel, sent := m.endpointContext(ctx)
	defer cancel()
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier.Reveal())}
	for k, v := range o.ExtraParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	red := NewRedactor(append(tok.Secrets(), code.Reveal(), verifier.Reveal())...)
	t, err := o.config(redirectURI).Exchange(ctx, code.Reveal(), opts...)
	g := grantOf(t, err, sent.Load(), red, tok, "code exchange")
	if g.outcome == unanswered {
		g.outcome = refused // a code is single use: it cannot be sent again anyway
	}
	return g
}

// config is the x/oauth2 configuration of o for the authorization code
// flow with redirectURI.
func (o *OAuth2) config(redirectURI string) *oauth2.Config {
	c := &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), RedirectURL: redirectURI, Scopes: o.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: o.AuthorizeURL, TokenURL: o.TokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	if o.ClientAuth == ClientAuthBody {
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return c
}

// grantOf classifies what a token request of tok answered: t and err as
// x/oauth2 returns them, sent whether the request was written, red the
// secrets the request held, what the kind of request for messages.
func grantOf(t *oauth2.Token, err error, sent bool, red *Redactor, tok *Token, what string) grant {
	o := tok.OAuth2
	if err == nil {
		g := grant{outcome: granted, access: Secret(t.AccessToken), refresh: Secret(t.RefreshToken)}
		// x/oauth2 turns expires_in into Expiry (on the real clock); the
		// Manager's clock takes the lifetime from there.
		if !t.Expiry.IsZero() {
			g.expiresIn = max(time.Until(t.Expiry).Round(time.Second), time.Second)
		}
		return g
	}
	var rerr *oauth2.RetrieveError
	if errors.As(err, &rerr) {
		aerr := endpointError(rerr, red)
		g := grant{outcome: refused, err: aerr, code: rerr.ErrorCode}
		if aerr.Status >= 500 || aerr.Status == http.StatusTooManyRequests {
			g.outcome = transient
		}
		return g
	}
	where := fmt.Sprintf("%s to %s", what, endpointName(o.TokenURL))
	if errors.Is(err, netguard.ErrNotAllowed) {
		return grant{outcome: refused, err: fmt.Errorf("%s: %w", where, netguard.ErrNotAllowed)}
	}
	reason := red.String(describeNetErr(err, tok))
	if !sent {
		return grant{outcome: transient, err: fmt.Errorf("%s: %s", where, reason)}
	}
	return grant{outcome: unanswered, err: fmt.Errorf("%s: no answer: %s", where, reason)}
}

// endpointName is the scheme, host and path of u: its query may hold keys.
func endpointName(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "token_url"
	}
	return p.Scheme + "://" + p.Host + p.Path
}

// endpointError describes an error answer of the token endpoint, with the
// secrets the request held masked in it.
func endpointError(rerr *oauth2.RetrieveError, red *Redactor) *AuthError {
	status := 0
	if rerr.Response != nil {
		status = rerr.Response.StatusCode
	}
	body, _ := red.Cap(rerr.Body, 2048)
	reason := fmt.Sprintf("token endpoint answered %d", status)
	if rerr.ErrorCode != "" {
		reason += " " + red.String(rerr.ErrorCode)
		if rerr.ErrorDescription != "" {
			reason += ": " + red.String(rerr.ErrorDescription)
		}
	}
	return &AuthError{Status: status, Body: red.String(redactJSONSecrets(string(body))), Reason: capString(reason, 512)}
}

func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// obtainGrant makes the token request of tok, trying again within the
// Fetcher's retry window while the outcome is transient (for
// client_credentials, also when unanswered: nothing is spent). A refresh
// that may have spent its refresh token is never sent again.
func (m *Manager) obtainGrant(ctx context.Context, tok *Token, refresh Secret) grant {
	var b backoff.BackOff = &backoff.StopBackOff{}
	if m.fetcher.retry > 0 {
		eb := backoff.NewExponentialBackOff()
		eb.InitialInterval, eb.MaxInterval, eb.MaxElapsedTime = 100*time.Millisecond, time.Second, m.fetcher.retry
		b = eb
	}
	b = backoff.WithContext(b, ctx)
	for {
		g := m.requestToken(ctx, tok, refresh)
		if g.outcome == unanswered && refresh == "" {
			g.outcome = transient
		}
		if g.outcome != transient || ctx.Err() != nil {
			return g
		}
		next := b.NextBackOff()
		if next == backoff.Stop {
			return g
		}
		select {
		case <-ctx.Done():
			return g
		case <-time.After(next):
		}
	}
}

// revoke asks the revocation endpoint of tok (oauth2.revoke_url) to revoke
// token (RFC 7009), with the client's authentication; hint is
// "refresh_token" or "access_token". The endpoint answers 200 also for a
// token it does not know.
func (m *Manager) revoke(ctx context.Context, tok *Token, token Secret, hint string) error {
	o := tok.OAuth2
	ctx, cancel := context.WithTimeout(ctx, m.fetcher.timeout)
	defer cancel()
	form := url.Values{"token": {token.Reveal()}, "token_type_hint": {hint}}
	if o.ClientAuth == ClientAuthBody {
		form.Set("client_id", o.ClientID)
		if o.ClientSecret != "" {
			form.Set("client_secret", o.ClientSecret.Reveal())
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.RevokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revoke at %s: %v", endpointName(o.RevokeURL), err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if o.ClientAuth != ClientAuthBody {
		req.SetBasicAuth(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret.Reveal()))
	}
	red := NewRedactor(append(tok.Secrets(), token.Reveal())...)
	resp, err := m.fetcher.client.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrNotAllowed) {
			return fmt.Errorf("revoke at %s: %w", endpointName(o.RevokeURL), netguard.ErrNotAllowed)
		}
		return fmt.Errorf("revoke at %s: %s", endpointName(o.RevokeURL), red.String(describeNetErr(err, tok)))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode != http.StatusOK {
		return &AuthError{Status: resp.StatusCode, Body: red.String(redactJSONSecrets(string(body))),
			Reason: fmt.Sprintf("revocation endpoint %s answered %d", endpointName(o.RevokeURL), resp.StatusCode)}
	}
	return nil
}
