package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"customactions/breaker"
	"customactions/events"
)

// Throttler holds an action back on every replica after its API asked for
// a pause; *breaker.Breaker satisfies it (the state lives in the breakers
// bucket).
type Throttler interface {
	ThrottledUntil(actionID string) time.Time
	Throttle(ctx context.Context, actionID string, until time.Time, status int) error
}

// Limiter enforces the limits an admin set per action (a fleet-wide rate
// and maximum of concurrent calls); *breaker.Breaker satisfies it.
type Limiter interface {
	Acquire(ctx context.Context, actionID string) (release func(), err error)
}

// throttledFor is how long the action is still held back fleet-wide.
func (s *Service) throttledFor(actionID string) time.Duration {
	if s.throttler == nil {
		return 0
	}
	until := s.throttler.ThrottledUntil(actionID)
	if !until.IsZero() {
		s.lastPause.Store(actionID, until)
	}
	return time.Until(until)
}

// recoveryWindow is how long after a pause ends the triggers of the action
// still go one at a time in a process: the API has just asked for less.
const recoveryWindow = 10 * time.Second

// recovering reports whether a pause of the action ended within the
// recovery window.
func (s *Service) recovering(actionID string, until time.Time) bool {
	last := until
	if v, ok := s.lastPause.Load(actionID); ok && v.(time.Time).After(last) {
		last = v.(time.Time)
	}
	return !last.IsZero() && time.Since(last) < recoveryWindow
}

// throttle records the pause the action asked for, for every replica.
func (s *Service) throttle(actionID string, until time.Time, status int) {
	if s.throttler == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.throttler.Throttle(ctx, actionID, until, status); err != nil {
		s.log.Warn("throttle state unreachable: only this trigger waits", "action_id", actionID, "err", err)
	}
}

// awaitPause waits while the action is paused (fleet-wide, or until, this
// trigger's own view). For a while after a pause the action's triggers go
// one at a time in this process (the first may be answered 429 again, and
// the others must not be in flight then); release ends the trigger's turn.
// A pause longer than the deadline allows returns its length in wait.
func (s *Service) awaitPause(ctx context.Context, t *events.Trigger, until time.Time) (release func(), wait time.Duration, err error) {
	waited := false
	for {
		wait = max(time.Until(until), s.throttledFor(t.ActionID))
		if wait <= 0 {
			if !waited && !s.recovering(t.ActionID, until) {
				return func() {}, 0, nil
			}
			release, err := s.resume.enter(ctx, t.ActionID)
			if errors.Is(err, context.DeadlineExceeded) {
				// The trigger's deadline passed in the queue behind the
				// action's other triggers after a pause: rate_limited.
				return nil, time.Millisecond, nil
			}
			if err != nil {
				return nil, 0, fmt.Errorf("wait for the pause the action asked for: %w", err)
			}
			if max(time.Until(until), s.throttledFor(t.ActionID)) <= 0 {
				return release, 0, nil
			}
			release() // paused again by the trigger that went first
			continue
		}
		if !s.canWait(ctx, t, wait) {
			return nil, wait, nil
		}
		if !sleepCtx(ctx, wait) {
			return nil, 0, fmt.Errorf("wait for the pause the action asked for: %w", ctx.Err())
		}
		waited = true
	}
}

// gates lets one trigger at a time per action through.
type gates struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (g *gates) enter(ctx context.Context, key string) (func(), error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]chan struct{}{}
	}
	ch := g.m[key]
	if ch == nil {
		ch = make(chan struct{}, 1)
		g.m[key] = ch
	}
	g.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return sync.OnceFunc(func() { <-ch }), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// canWait reports whether the trigger's deadline leaves room to wait and
// then make one more attempt.
func (s *Service) canWait(ctx context.Context, t *events.Trigger, wait time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline)-s.attemptTimeout(t) >= wait
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryAfter returns the pause a 429 or 503 answer asks for with
// Retry-After (seconds or an HTTP date), capped by limit.
func retryAfter(c *callResult, limit time.Duration) (time.Duration, bool) {
	if c == nil || (c.status != http.StatusTooManyRequests && c.status != http.StatusServiceUnavailable) {
		return 0, false
	}
	v := strings.TrimSpace(headerValue(c.headers, "Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(limit/time.Second) {
			return limit, true // compared before multiplying: no overflow
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = time.Until(at)
	} else {
		return 0, false
	}
	return min(max(d, 0), limit), true
}

func headerValue(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// rateLimited answers a trigger whose action asked for a pause longer than
// its deadline allows.
func (s *Service) rateLimited(t *events.Trigger, r *run, c *callResult, wait time.Duration) {
	res := r.res
	res.Status = events.StatusFailed
	res.RetryAfterMS = max(wait.Milliseconds(), 1)
	res.Error = &events.Error{Code: events.CodeRateLimited,
		Message: fmt.Sprintf("the action asked callers to wait %s (Retry-After); the trigger's deadline does not allow it", wait.Round(time.Millisecond))}
	details := map[string]any{"method": t.Request.Method, "url": displayURL(t.Request.URL), "attempts": res.Attempts,
		"code": events.CodeRateLimited, "retry_after_ms": res.RetryAfterMS}
	if c != nil && c.status != 0 {
		res.HTTPStatus = c.status
		res.Response = &events.Response{Headers: c.headers, Body: c.body, Truncated: c.truncated}
		details["http_status"] = c.status
	}
	r.log(events.LevelWarn, events.EventActionFailed, res.Error.Message, details)
}

// ThrottleLog returns what publishes action_throttled and
// action_unthrottled log events; wire it to breaker.OnThrottle.
func ThrottleLog(pub *events.Publisher, log interface {
	Warn(msg string, args ...any)
}, now func() time.Time) func(breaker.Throttle) {
	return func(th breaker.Throttle) {
		ev := &events.LogEvent{Time: events.FormatTime(now()), ActionID: th.ActionID, Details: map[string]any{"http_status": th.Status}}
		if th.Until.IsZero() {
			ev.Level, ev.Event, ev.Message = events.LevelInfo, events.EventActionUnthrottled, "the pause the action asked for is over: calls resume"
		} else {
			ev.Level, ev.Event = events.LevelWarn, events.EventActionThrottled
			ev.Message = fmt.Sprintf("the action answered %d with Retry-After: every replica holds its calls back until %s", th.Status, events.FormatTime(th.Until))
			ev.Details["until"] = events.FormatTime(th.Until)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := pub.Log(ev, "").Wait(ctx); err != nil {
			log.Warn("publish throttle event", "action_id", th.ActionID, "err", err)
		}
	}
}

// limited answers a trigger whose action's admin limits gave no permit
// before its deadline.
func (s *Service) limited(t *events.Trigger, r *run) {
	res := r.res
	res.Status = events.StatusFailed
	res.RetryAfterMS = 1
	res.Error = &events.Error{Code: events.CodeRateLimited,
		Message: "the action's limits (rate or concurrent calls, set by an admin) gave no permit before the trigger's deadline"}
	r.log(events.LevelWarn, events.EventActionFailed, res.Error.Message, map[string]any{"method": t.Request.Method,
		"url": displayURL(t.Request.URL), "attempts": res.Attempts, "code": events.CodeRateLimited})
}
