package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"customactions/internal/netguard"
)

// AuthError is a failed auth request: the endpoint answered with a status
// that is not 2xx, or its answer held no token. Body is capped and has every
// secret of the token masked, in the forms a Redactor recognizes.
type AuthError struct {
	Status int
	Body   string
	Reason string
	// Err is the cause, when there is one beyond the status (a token_path
	// that found nothing wraps ErrNotInResponse).
	Err error
}

func (e *AuthError) Error() string {
	return e.Reason
}

// Unwrap returns the cause.
func (e *AuthError) Unwrap() error { return e.Err }

// Fetched is an HTTP token as fetched from its auth endpoint.
type Fetched struct {
	Token     Secret
	FetchedAt time.Time
	ExpiresAt time.Time // zero when the lifetime is unknown
	// Revision is the KV revision of the record, which orders the fetched
	// tokens of one token id (0 when not stored).
	Revision   uint64
	ConfigHash string

	redactOnce sync.Once
	redact     *Redactor
}

// ExpiresWithin reports whether the token expires within d of now.
func (f *Fetched) ExpiresWithin(now time.Time, d time.Duration) bool {
	return !f.ExpiresAt.IsZero() && !now.Add(d).Before(f.ExpiresAt)
}

// TestResult is what an auth request answered, for the admin "Test request"
// button. Body and header values have the token's secrets masked.
type TestResult struct {
	Status    int
	Headers   map[string]string
	Body      string
	Truncated bool
	Token     Secret        // empty when token_path found nothing
	ExpiresIn time.Duration // 0 when unknown
	PathErr   error         // why token_path or expires_in_path found nothing
}

// Fetcher performs auth requests.
type Fetcher struct {
	client  *http.Client
	maxBody int64
	timeout time.Duration
	retry   time.Duration
	now     func() time.Time
}

// FetcherOption configures a Fetcher.
type FetcherOption func(*Fetcher)

// WithHTTPClient sets the client of auth requests (default: a client with
// the default transport).
func WithHTTPClient(c *http.Client) FetcherOption { return func(f *Fetcher) { f.client = c } }

// WithMaxAuthBody caps the auth response body that is read (default 64 KiB).
func WithMaxAuthBody(n int64) FetcherOption { return func(f *Fetcher) { f.maxBody = n } }

// WithAuthTimeout bounds one auth request (default 10 s).
func WithAuthTimeout(d time.Duration) FetcherOption { return func(f *Fetcher) { f.timeout = d } }

// WithRetryWindow bounds how long transient auth failures are retried
// (default 5 s, and never past the caller's deadline); 0 or less tries once.
func WithRetryWindow(d time.Duration) FetcherOption { return func(f *Fetcher) { f.retry = d } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) FetcherOption { return func(f *Fetcher) { f.now = now } }

// NewFetcher returns a Fetcher.
func NewFetcher(opts ...FetcherOption) *Fetcher {
	f := &Fetcher{client: &http.Client{}, maxBody: 64 << 10, timeout: 10 * time.Second, retry: 5 * time.Second, now: time.Now}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Fetch performs the auth request of tok and returns the token found at its
// token_path. Transient failures (network errors, 5xx, 429) are retried with
// exponential backoff within the retry window and ctx's deadline; other
// failures are returned at once. A failure from the endpoint is an
// *AuthError; a path that finds nothing wraps ErrNotInResponse.
func (f *Fetcher) Fetch(ctx context.Context, tok *Token) (*Fetched, error) {
	tokenPath, err := ParsePath(tok.TokenPath)
	if err != nil {
		return nil, fmt.Errorf("token_path: %w", err)
	}
	var out *Fetched
	var b backoff.BackOff = &backoff.StopBackOff{} // no retry window: one try
	if f.retry > 0 {
		eb := backoff.NewExponentialBackOff()
		eb.InitialInterval, eb.MaxInterval, eb.MaxElapsedTime = 100*time.Millisecond, time.Second, f.retry
		b = eb
	}
	op := func() error {
		res, err := f.do(ctx, tok)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, netguard.ErrNotAllowed) || errors.Is(err, ErrInvalidToken) {
				return backoff.Permanent(err)
			}
			return err // network error: transient
		}
		if res.Status < 200 || res.Status > 299 {
			aerr := &AuthError{Status: res.Status, Body: res.Body, Reason: fmt.Sprintf("auth endpoint answered %d", res.Status)}
			if res.Status >= 500 || res.Status == http.StatusTooManyRequests {
				return aerr
			}
			return backoff.Permanent(aerr)
		}
		if res.PathErr != nil {
			return backoff.Permanent(&AuthError{Status: res.Status, Body: res.Body, Err: res.PathErr,
				Reason: fmt.Sprintf("token_path %s: %v", tokenPath, res.PathErr)})
		}
		now := f.now()
		out = &Fetched{Token: res.Token, FetchedAt: now, ConfigHash: tok.ConfigHash()}
		if res.ExpiresIn > 0 {
			out.ExpiresAt = now.Add(res.ExpiresIn)
		}
		return nil
	}
	if err := backoff.Retry(op, backoff.WithContext(b, ctx)); err != nil {
		return nil, err
	}
	return out, nil
}

// Test performs the auth request once, without retries, and reports what
// it answered; an error means no answer came (network error, timeout).
func (f *Fetcher) Test(ctx context.Context, tok *Token) (*TestResult, error) {
	return f.do(ctx, tok)
}

func (f *Fetcher) do(ctx context.Context, tok *Token) (*TestResult, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := buildAuthRequest(ctx, tok)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if errors.Is(err, netguard.ErrNotAllowed) {
		return nil, fmt.Errorf("auth request to %s://%s: %w", req.URL.Scheme, req.URL.Host, netguard.ErrNotAllowed)
	}
	if err != nil {
		return nil, fmt.Errorf("auth request to %s://%s%s: %s", req.URL.Scheme, req.URL.Host, req.URL.Path, describeNetErr(err, tok))
	}
	defer resp.Body.Close()
	secrets := tok.Secrets()
	// Read past the cap, so that a secret straddling it is recognized and
	// dropped whole rather than cut: as far as the token's own secrets need,
	// and authLookahead more for the fetched token, not known yet.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBody+int64(NewRedactor(secrets...).Lookahead())+authLookahead))
	if err != nil {
		return nil, fmt.Errorf("read auth response: %s", describeNetErr(err, tok))
	}
	res := &TestResult{Status: resp.StatusCode, Headers: map[string]string{}}
	body := raw
	if int64(len(raw)) > f.maxBody {
		body, res.Truncated = raw[:f.maxBody], true
	}
	if tok.TokenPath != "" {
		p, perr := ParsePath(tok.TokenPath)
		if perr == nil {
			var v string
			v, perr = p.Extract(resp.Header, body)
			if res.Truncated && !p.IsHeader() {
				if perr == nil {
					perr = fmt.Errorf("auth response is larger than %d bytes", f.maxBody)
				}
				// The token may be whole in what was read past the cap:
				// it is not used, but it is masked.
				if past, err := p.Extract(resp.Header, raw); err == nil {
					secrets = append(secrets, past)
				}
			}
			res.Token = Secret(v)
		}
		res.PathErr = perr
		if res.Token != "" {
			secrets = append(secrets, string(res.Token))
		}
	}
	if tok.ExpiresInPath != "" && res.PathErr == nil {
		if p, err := ParsePath(tok.ExpiresInPath); err == nil {
			if v, err := p.Extract(resp.Header, body); err == nil {
				if secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && secs > 0 {
					res.ExpiresIn = time.Duration(secs * float64(time.Second))
				}
			}
		}
	}
	red := NewRedactor(secrets...)
	for k, v := range resp.Header {
		res.Headers[k] = red.String(strings.Join(v, ", "))
	}
	shown, _ := red.Cap(raw, int(f.maxBody))
	// redactJSONSecrets decodes and encodes the JSON again, which can turn
	// an escaped secret into a plain one: redact once more.
	var clear []string
	if tok.Request != nil {
		clear = tok.Request.clearValues() // shown to admins anyway
	}
	res.Body = red.String(redactJSONSecrets(string(shown), clear...))
	return res, nil
}

// authLookahead is how far past the cap an auth response is read for a
// fetched token that straddles the cap.
const authLookahead = 16 << 10

// describeNetErr says what went wrong with a call without repeating the URL
// (whose query may hold params) or anything else the error echoes.
func describeNetErr(err error, tok *Token) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return Redact(err.Error(), tok.Secrets()...)
}

func buildAuthRequest(ctx context.Context, tok *Token) (*http.Request, error) {
	r := tok.Request
	if r == nil {
		return nil, fmt.Errorf("%w: token %s has no request", ErrInvalidToken, tok.ID)
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: request.url is not a URL", ErrInvalidToken)
	}
	var body io.Reader
	contentType := ""
	if len(r.Params) > 0 {
		switch r.ParamsEncoding {
		case EncodingQuery:
			q := u.Query()
			for k, v := range r.Params {
				q.Set(k, v.Reveal())
			}
			u.RawQuery = q.Encode()
		case EncodingJSON:
			m := make(map[string]string, len(r.Params))
			for k, v := range r.Params {
				m[k] = v.Reveal()
			}
			b, _ := json.Marshal(m)
			body, contentType = bytes.NewReader(b), "application/json"
		default:
			form := url.Values{}
			for k, v := range r.Params {
				form.Set(k, v.Reveal())
			}
			body, contentType = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%w: build auth request: %s", ErrInvalidToken, Redact(err.Error(), tok.Secrets()...))
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range r.Headers {
		req.Header.Set(k, v.Reveal())
	}
	return req, nil
}

// secretKey matches a JSON member name that says it holds a secret.
var secretKey = regexp.MustCompile(`(?i)^(?:[a-z0-9_-]*[_-])?(?:token|secret|password|passwd|api_?key|credentials?|[a-z0-9_-]*secret[a-z0-9_-]*)$`)

// secretKeyValue is secretKey inside a body that is not valid JSON.
var secretKeyValue = regexp.MustCompile(`(?i)("(?:[a-z0-9_-]*[_-])?(?:token|secret|password|passwd|api_?key|credentials?|[a-z0-9_-]*secret[a-z0-9_-]*)"\s*:\s*)"([^"\\]|\\.)*"`)

// redactJSONSecrets masks, in a body shown to people or written to a log
// event, the values of members named like secrets ("access_token",
// "client_secret") and every string that looks like a token (16 or more
// characters without a space), wherever it is: without a token_path the
// token's place is not known yet. The structure stays visible, so an admin
// can still pick the path. A string equal to one of clear (the token's
// values that are not secret, as grant_type's) is not taken for a token.
func redactJSONSecrets(s string, clear ...string) string {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return secretKeyValue.ReplaceAllString(s, `$1"****"`)
	}
	out, err := json.Marshal(maskValue("", doc, clear))
	if err != nil {
		return secretKeyValue.ReplaceAllString(s, `$1"****"`)
	}
	return string(out)
}

func maskValue(key string, v any, clear []string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = maskValue(k, e, clear)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = maskValue(key, e, clear)
		}
		return x
	case string:
		if (key != "" && secretKey.MatchString(key)) || (looksLikeToken(x) && !slices.Contains(clear, x)) {
			return Mask(x)
		}
		return x
	default:
		return v
	}
}

func looksLikeToken(s string) bool {
	return len(s) >= 16 && !strings.ContainsAny(s, " \t\n")
}
