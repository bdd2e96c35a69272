package consumer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

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
}

// call sends the trigger's request once, with the Idempotency-Key and
// signed by sign (the token's header), and reads at most ResponseBodyCap
// bytes of the answer.
func (s *Service) call(ctx context.Context, t *events.Trigger, sign func(http.Header)) *callResult {
	ctx, cancel := context.WithTimeout(ctx, s.attemptTimeout(t))
	defer cancel()
	start := time.Now()
	res := &callResult{}
	defer func() { res.elapsed = time.Since(start) }()

	var body io.Reader
	if t.Request.Body != "" {
		body = strings.NewReader(t.Request.Body)
	}
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
	sign(req.Header)
	resp, err := s.client.Do(req)
	if err != nil {
		res.code, res.message = classify(err, ctx)
		return res
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.ResponseBodyCap+1))
	if err != nil {
		res.code, res.message = classify(err, ctx)
		res.message = "read response: " + res.message
		return res
	}
	if int64(len(data)) > s.cfg.ResponseBodyCap {
		data, res.truncated = data[:s.cfg.ResponseBodyCap], true
	} else {
		// Read to the end so the connection is reused; bounded by the cap.
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	}
	res.status = resp.StatusCode
	res.body = string(data)
	res.headers = make(map[string]string, len(resp.Header))
	for k, v := range resp.Header {
		if len(v) == 1 {
			res.headers[k] = v[0]
		} else {
			res.headers[k] = strings.Join(v, ", ")
		}
	}
	return res
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
