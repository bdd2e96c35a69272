package auth

// Requests to the token endpoint of an oauth2 token, made with x/oauth2
// over the Fetcher's (netguard-guarded) client, and what their outcome
// means for the refresh token that was sent.

import (
	"context"
	"errors"
	"fmt"
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

// requestToken makes one token request for tok: a refresh with refresh
// when it is set, otherwise client_credentials. Scopes and extra_params go
// with every request.
func (m *Manager) requestToken(ctx context.Context, tok *Token, refresh Secret) grant {
	o := tok.OAuth2
	ctx, cancel := context.WithTimeout(ctx, m.fetcher.timeout)
	defer cancel()
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			sent.Store(true)
		}
	}})
	ctx = context.WithValue(ctx, oauth2.HTTPClient, m.fetcher.client)

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
	if err == nil {
		g := grant{outcome: granted, access: Secret(t.AccessToken), refresh: Secret(t.RefreshToken)}
		g.rotated = refresh != "" && g.refresh != refresh
		// clientcredentials turns expires_in into Expiry (on the real
		// clock); the Manager's clock takes the lifetime from there.
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
	where := fmt.Sprintf("token request to %s", endpointName(o.TokenURL))
	if errors.Is(err, netguard.ErrNotAllowed) {
		return grant{outcome: refused, err: fmt.Errorf("%s: %w", where, netguard.ErrNotAllowed)}
	}
	reason := red.String(describeNetErr(err, tok))
	if !sent.Load() {
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
