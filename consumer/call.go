package consumer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"customactions/auth"
	"customactions/events"
	"customactions/internal/netguard"
)

// callResult is what one call to the action URL gave.
type callResult struct {
	status    int
	headers   map[string]string
	body      string
	truncated bool
	code      string // error code when no response came
	message   string
	elapsed   time.Duration
	// release gives back the response memory the call holds (see
	// responseBudget); it is called once the result is stored.
	release func()
}

func (c *callResult) free() {
	if c != nil && c.release != nil {
		c.release()
		c.release = nil
	}
}

// call sends the trigger's request once, with the Idempotency-Key and
// signed by cred, and reads at most ResponseBodyCap bytes of the answer.
// Headers that carry secrets (cred's, the trigger's sensitive_headers and
// the well-known credential headers) are dropped when the action
// redirects to another host; what the action sends back is redacted of
// cred's secrets. attempt numbers the call within its trigger (from 1);
// with tracing on, the call has a span and sends its traceparent.
func (s *Service) call(ctx context.Context, t *events.Trigger, cred auth.Credential, attempt int) *callResult {
	ctx, cancel := context.WithTimeout(ctx, s.attemptTimeout(t))
	defer cancel()
	start := time.Now()
	res := &callResult{}
	defer func() { res.elapsed = time.Since(start) }()

	var body io.Reader
	if t.Request.Body != "" {
		body = strings.NewReader(t.Request.Body)
	}
	ctx = withRedirectGuard(ctx, cred.Header(), t.Request.SensitiveHeaders)
	req, err := http.NewRequestWithContext(ctx, t.Request.Method, t.Request.URL, body)
	if err != nil {
		res.code, res.message = events.CodeNetworkError, "build request: "+err.Error()
		return res
	}
	for k, v := range t.Request.Headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", t.ID)
	}
	if hostHeader := req.Header.Get("Host"); hostHeader != "" {
		req.Host = hostHeader
	}
	if s.tracer != nil {
		// After the trigger's headers: the attempt's span is the parent
		// the action sees. Without tracing a traceparent of the trigger's
		// request headers is sent as it is.
		span := s.startAttempt(ctx, req, attempt)
		defer endAttempt(span, res)
	}
	cred.Sign(req.Header)
	resp, err := s.client.Do(req)
	if err != nil {
		res.code, res.message = classify(err, ctx)
		return res
	}
	defer resp.Body.Close()
	data, err := s.readBody(ctx, resp.Body, resp.ContentLength, res, cred.Lookahead())
	if err != nil {
		res.free()
		if errors.Is(err, errNoResponseMemory) {
			res.code, res.message = events.CodeTimeout, err.Error()
			return res
		}
		res.code, res.message = classify(err, ctx)
		res.message = "read response: " + res.message
		return res
	}
	res.truncated = int64(len(data)) > s.cfg.ResponseBodyCap
	if !res.truncated {
		// Read to the end so the connection is reused; bounded by the cap.
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	}
	res.status = resp.StatusCode
	res.body = string(data)
	if cred.Redacts() {
		// Redacted before the cut, over the bytes read past the cap: a
		// secret that straddles the cap is masked whole, not left in part.
		res.body = cred.Redact(res.body)
	}
	if int64(len(res.body)) > s.cfg.ResponseBodyCap {
		res.body = res.body[:s.cfg.ResponseBodyCap]
	}
	res.headers = make(map[string]string, len(resp.Header))
	for k, v := range resp.Header {
		if len(v) == 1 {
			res.headers[k] = v[0]
		} else {
			res.headers[k] = strings.Join(v, ", ")
		}
	}
	if cred.Redacts() {
		for k, v := range res.headers {
			res.headers[k] = cred.Redact(v)
		}
	}
	return res
}

// readBody reads at most ResponseBodyCap+1 bytes of a response. The first
// smallResponse bytes are read freely; a larger response first takes its
// share of the response memory budget (held in res.release), so that the
// bytes all workers hold at once stay bounded however large and
// concurrent the responses are.
func (s *Service) readBody(ctx context.Context, body io.Reader, size int64, res *callResult, lookahead int) ([]byte, error) {
	limit := s.cfg.ResponseBodyCap + int64(lookahead) + 1
	first := min(limit, smallResponse)
	// Room for the whole body when its length is known (and one byte more
	// to see its end without growing), else 512 bytes to grow from. Most
	// answers are small: a fixed 4 KiB buffer and a bytes.Buffer per call
	// were 2.5 % of the consumer's CPU at C=16 with a 0 ms API.
	initial := int64(512)
	if size >= 0 {
		initial = size + 1
	}
	buf, err := readAppend(make([]byte, 0, min(first, initial)), io.LimitReader(body, first))
	if n := int64(len(buf)); err != nil || n < first || n == limit {
		return buf, err
	}
	release, err := s.budget.take(ctx, s.largeResponseWeight())
	if err != nil {
		return nil, err
	}
	res.release = release
	return readAppend(buf, io.LimitReader(body, limit-int64(len(buf))))
}

// readAppend reads r to its end, appending to b (io.ReadAll's loop, from
// a buffer of the caller's size).
func readAppend(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return b, err
		}
	}
}

// sensitiveHeaders carry credentials wherever they appear: they never
// follow a redirect to another host, whatever the trigger says.
var sensitiveHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "Api-Key",
	"X-Auth-Token", "X-Access-Token", "X-Amz-Security-Token", "X-Csrf-Token"}

// redirectGuardKey is the context key of the headers a redirect to another
// host drops; the value is []string.
type redirectGuardKey struct{}

func withRedirectGuard(ctx context.Context, tokenHeader string, sensitive []string) context.Context {
	drop := make([]string, 0, len(sensitive)+1)
	if tokenHeader != "" {
		drop = append(drop, tokenHeader)
	}
	drop = append(drop, sensitive...)
	return context.WithValue(ctx, redirectGuardKey{}, drop)
}

// guardRedirects wraps the client's redirect policy: every redirect drops
// the Referer (the previous URL's query may hold keys), and a redirect to
// another host than the first request's drops the headers that carry
// secrets. net/http drops only Authorization, Cookie and WWW-Authenticate,
// and keeps them for subdomains.
func guardRedirects(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		req.Header.Del("Referer")
		if len(via) > 0 && !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
			for _, h := range sensitiveHeaders {
				req.Header.Del(h)
			}
			drop, _ := req.Context().Value(redirectGuardKey{}).([]string)
			for _, h := range drop {
				req.Header.Del(h)
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// classify names a failed call with an error code and a message that does
// not repeat the URL (its query may hold keys).
func classify(err error, ctx context.Context) (code, message string) {
	switch {
	case errors.Is(err, netguard.ErrNotAllowed):
		var nerr *net.OpError
		msg := "the URL resolves to an address that is not allowed"
		if errors.As(err, &nerr) && nerr.Err != nil {
			msg = nerr.Err.Error()
		}
		return events.CodeURLNotAllowed, msg
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return events.CodeTimeout, "the action did not answer within the timeout"
	case errors.Is(err, context.Canceled):
		return events.CodeNetworkError, "the call was cancelled"
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return events.CodeTimeout, "the action did not answer within the timeout"
	}
	var uerr interface{ Unwrap() error }
	if errors.As(err, &uerr) {
		if inner := uerr.Unwrap(); inner != nil {
			return events.CodeNetworkError, inner.Error()
		}
	}
	return events.CodeNetworkError, err.Error()
}
