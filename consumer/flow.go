package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"customactions/auth"
	"customactions/breaker"
	"customactions/events"
	"customactions/internal/netguard"
)

// run is what executing one trigger produced.
type run struct {
	res  *events.Result
	logs []*events.LogEvent
	// done records the outcome in the breaker, after the result is stored;
	// armSlow starts its slow-call clock at each call.
	done    func(breaker.Outcome)
	armSlow func()
	// call is the last call made, whose response memory is given back
	// once the result is stored.
	call *callResult
	// calls counts the calls made, for the attempt number of their spans.
	calls int
	// infra is set when the trigger could not be finished for a reason of
	// ours (KV unreachable, shutdown); it is retried instead of answered.
	infra error
}

// log adds a log event of the trigger. It carries no Nats-Msg-Id: a
// redelivered trigger that calls the API again logs that call again.
func (r *run) log(level, event, message string, details map[string]any) {
	res := r.res
	r.logs = append(r.logs, &events.LogEvent{Level: level, Event: event, ActionID: res.ActionID,
		TriggerID: res.TriggerID, TokenID: res.TokenID, Message: message, Details: details, Context: res.Context})
}

// handle runs one trigger through the flow and acknowledges it.
// worker is the worker's index (its keep-alive slot).
func (s *Service) handle(work context.Context, worker int, msg jetstream.Msg) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.holds.take(worker, msg, time.Now())
	defer s.holds.release(worker)

	meta, err := msg.Metadata()
	if err != nil {
		s.log.Error("trigger without JetStream metadata, terminating it", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason("no metadata")
		return
	}
	started := s.now()
	t, derr := events.Decode(s.subjects, msg.Subject(), msg.Data(), s.cfg.limits())
	r := &run{res: &events.Result{TriggerID: t.ID, ActionID: t.ActionID, Source: t.Source, TokenID: t.TokenID,
		EndUserID: t.EndUserID(), Context: t.Context, StartedAt: events.FormatTime(started)}}
	if r.res.TriggerID == "" || len(r.res.TriggerID) > 128 {
		r.res.TriggerID = "seq-" + strconv.FormatUint(meta.Sequence.Stream, 10)
	}
	p := &pending{msg: msg, meta: meta, r: r, started: started, t: t}
	if derr != nil {
		var inv *events.InvalidError
		msgText := derr.Error()
		if errors.As(derr, &inv) {
			msgText = inv.Message
		}
		s.reject(r, events.CodeInvalidTrigger, msgText)
		s.complete(work, p)
		return
	}
	if s.recent {
		s.keepRecent(t, msg.Data())
	}
	if t.Live() && s.breaker != nil && s.breaker.Open(t.ActionID) {
		s.run(work, p) // answered breaker_open: no call, no slot needed
		return
	}
	// While its action is paused (Retry-After), a trigger waits only if
	// few of the action's triggers wait already: the slots' holders go one
	// at a time after the pause, so a long queue would hold triggers (and
	// MaxAckPending, which every action shares) far past the pause.
	maxParked, pause := -1, s.throttledFor(t.ActionID)
	if pause > 0 {
		maxParked = pausedQueue * s.cfg.ActionConcurrency
	}
	switch s.bulk.enter(t.ActionID, p, time.Now(), maxParked) {
	case closed:
		_ = msg.Nak() // shutting down: another replica takes it at once
		return
	case full:
		s.rateLimited(t, r, nil, pause) // no call
		s.complete(work, p)
		return
	case parked:
		return // the worker takes the next trigger
	}
	for p != nil {
		s.holds.take(worker, p.msg, time.Now())
		s.run(work, p)
		p = s.bulk.leave(t.ActionID)
	}
}

// pausedQueue times an action's bulkhead bound is how many of its triggers
// may wait parked while the action is paused.
const pausedQueue = 2

// run executes a trigger and finishes it.
func (s *Service) run(work context.Context, p *pending) {
	ctx, cancel := context.WithTimeout(work, s.triggerBudget(p.t))
	var span trace.Span
	if s.tracer != nil {
		ctx, span = s.startTrigger(ctx, p)
	}
	s.execute(ctx, p.t, p.r)
	cancel()
	if work.Err() != nil && p.r.infra == nil {
		p.r.infra = fmt.Errorf("shutdown: %w", work.Err())
	}
	s.complete(work, p)
	if span != nil {
		endTrigger(span, p.r)
	}
}

// complete stamps the result's end and finishes the trigger.
func (s *Service) complete(work context.Context, p *pending) {
	finished := s.now()
	p.r.res.FinishedAt = events.FormatTime(finished)
	p.r.res.DurationMS = finished.Sub(p.started).Milliseconds()
	s.finish(work, p.msg, p.meta, p.r)
}

// triggerBudget bounds a whole trigger: two attempts and a token refresh.
func (s *Service) triggerBudget(t *events.Trigger) time.Duration {
	return 2*s.attemptTimeout(t) + 20*time.Second
}

func (s *Service) attemptTimeout(t *events.Trigger) time.Duration {
	if d := t.Request.Timeout(); d > 0 {
		return min(d, s.cfg.MaxTimeout)
	}
	return s.cfg.DefaultTimeout
}

func (s *Service) reject(r *run, code, message string) {
	r.res.Status = events.StatusRejected
	r.res.Error = &events.Error{Code: code, Message: message}
	r.log(events.LevelWarn, events.EventTriggerRejected, "trigger rejected: "+message, map[string]any{"code": code})
}

// execute runs a valid trigger: breaker, token, call, refresh once.
func (s *Service) execute(ctx context.Context, t *events.Trigger, r *run) {
	if t.Live() && s.breaker != nil {
		done, err := s.breaker.Allow(ctx, t.ActionID)
		if errors.Is(err, breaker.ErrOpen) {
			r.res.Status = events.StatusBreakerOpen
			r.res.Error = &events.Error{Code: events.CodeBreakerOpen, Message: "action " + t.ActionID + " is paused by its circuit breaker"}
			if s.rejected.allow(t.ActionID, s.now()) {
				r.log(events.LevelWarn, events.EventBreakerRejected, "circuit breaker is open: calls to this action are paused", nil)
			}
			return
		}
		if err != nil {
			s.log.Warn("breaker unavailable, letting the call through", "action_id", t.ActionID, "err", err)
		}
		if done != nil {
			r.done, r.armSlow = s.watchSlow(done)
		}
	}

	var (
		c   *callResult
		out auth.CallOutcome
		err error
		// until is this trigger's own view of the action's pause, in case
		// the shared throttle could not be written.
		until time.Time
	)
	ref := auth.Ref{TokenID: t.TokenID, EndUserID: t.EndUserID(), TriggerID: r.res.TriggerID, ActionID: t.ActionID,
		OnBackgroundRefresh: s.backgroundRefresh(r.res)}
	attempt := func(ctx context.Context, cred auth.Credential) int {
		c.free() // the 401 of a first attempt is not kept
		r.calls++
		c = s.call(ctx, t, cred, r.calls)
		r.call = c
		s.metrics.call(t.ActionID, c.elapsed)
		return c.status
	}
	// A call answered 429 or 503 with Retry-After pauses the action on
	// every replica; this trigger waits when its deadline allows and is
	// sent once more, else it is rate_limited.
	for round := 0; round < 2; round++ {
		release, wait, werr := s.awaitPause(ctx, t, until)
		if werr != nil {
			err = werr
			break
		}
		if wait > 0 {
			r.res.Attempts, r.res.TokenRefreshed = out.Attempts, out.Refreshed
			s.rateLimited(t, r, c, wait)
			return
		}
		// The admin's limits of the action, fleet-wide: wait for a permit
		// of its rate and a slot of its concurrency, within the deadline.
		if s.limiter != nil {
			free, lerr := s.limiter.Acquire(ctx, t.ActionID)
			if lerr != nil {
				release()
				if errors.Is(lerr, breaker.ErrLimited) && ctx.Err() == context.DeadlineExceeded {
					r.res.Attempts, r.res.TokenRefreshed = out.Attempts, out.Refreshed
					s.limited(t, r)
					return
				}
				err = lerr
				break
			}
			defer free()
		}
		if r.armSlow != nil {
			r.armSlow()
		}
		var o auth.CallOutcome
		o, err = s.auth.Do(ctx, ref, attempt)
		if s.tracer != nil {
			traceAuth(ctx, t.TokenID, o)
		}
		out.Attempts += o.Attempts
		out.Refreshed = out.Refreshed || o.Refreshed
		out.Retried = o.Retried
		if o.Fetched != nil {
			out.Fetched = o.Fetched
		}
		if err != nil {
			release()
			break
		}
		ra, ok := retryAfter(c, s.cfg.MaxRetryAfter)
		if !ok {
			release()
			break
		}
		until = time.Now().Add(ra)
		s.throttle(t.ActionID, until, c.status)
		release() // after the pause is recorded: the next in turn sees it
		if round == 1 {
			r.res.Attempts, r.res.TokenRefreshed = out.Attempts, out.Refreshed
			s.rateLimited(t, r, c, ra)
			return
		}
	}
	r.res.Attempts, r.res.TokenRefreshed = out.Attempts, out.Refreshed
	if out.Fetched != nil {
		s.metrics.refreshed(t.TokenID)
		r.log(events.LevelInfo, events.EventTokenRefreshed, "token "+t.TokenID+" fetched from its auth endpoint", refreshedDetails(out.Fetched))
	}
	var (
		rerr *auth.RefreshError
		areq *auth.AuthorizationRequiredError
	)
	switch {
	case err == nil:
		s.conclude(t, out, c, r)
	case errors.As(err, &areq):
		// No call was made: the bot sends the link to the end user, and
		// the trigger again once the connection event comes.
		r.res.Status = events.StatusAuthorizationRequired
		r.res.AuthorizationURL = areq.URL
		r.res.Error = &events.Error{Code: events.CodeAuthorizationRequired, Message: areq.Error()}
		r.log(events.LevelInfo, events.EventAuthorizationRequired, areq.Error(), map[string]any{"code": events.CodeAuthorizationRequired, "end_user_id": areq.EndUserID})
	case errors.Is(err, auth.ErrEndUserRequired):
		s.reject(r, events.CodeInvalidTrigger, err.Error())
	case errors.Is(err, auth.ErrTokenNotFound):
		s.reject(r, events.CodeTokenNotFound, fmt.Sprintf("token %q does not exist", t.TokenID))
	case errors.Is(err, auth.ErrTokenUnreadable), errors.Is(err, auth.ErrUnsupportedType):
		// Retrying cannot help until an admin fixes the key or the token.
		s.reject(r, events.CodeTokenNotFound, err.Error())
	case errors.Is(err, netguard.ErrNotAllowed):
		s.reject(r, events.CodeURLNotAllowed, fmt.Sprintf("the auth endpoint of token %s: %v", t.TokenID, errors.Unwrap(err)))
	case errors.Is(err, auth.ErrReauthorizationRequired):
		// No call was made: an admin must save the token again or reconnect it.
		r.res.Status = events.StatusFailed
		r.res.Error = &events.Error{Code: events.CodeReauthorizationRequired, Message: err.Error()}
		r.log(events.LevelError, events.EventActionFailed, err.Error(), map[string]any{"code": events.CodeReauthorizationRequired})
	case errors.As(err, &rerr):
		s.metrics.refreshFailure(t.TokenID)
		s.refreshFailed(r, rerr.Err)
	default:
		r.infra = err
	}
}

func refreshedDetails(f *auth.Refresh) map[string]any {
	d := map[string]any{"token": f.Preview, "revision": f.Revision}
	if !f.ExpiresAt.IsZero() {
		d["expires_at"] = events.FormatTime(f.ExpiresAt)
	}
	return d
}

func refreshFailedDetails(err error) map[string]any {
	details := map[string]any{}
	var aerr *auth.AuthError
	if errors.As(err, &aerr) {
		details["auth_status"] = aerr.Status
		details["auth_body"] = capString(aerr.Body, 2048)
	}
	return details
}

func (s *Service) refreshFailed(r *run, err error) {
	r.res.Status = events.StatusFailed
	r.res.Error = &events.Error{Code: events.CodeTokenRefreshFailed, Message: "token refresh failed: " + err.Error()}
	r.log(events.LevelError, events.EventTokenRefreshFailed, err.Error(), refreshFailedDetails(err))
}

// backgroundRefresh returns what reports a proactive refresh, started by
// the call of the trigger of res, in that trigger's action log.
func (s *Service) backgroundRefresh(res *events.Result) func(auth.Refresh) {
	return func(f auth.Refresh) {
		ev := &events.LogEvent{Time: events.FormatTime(s.now()), ActionID: res.ActionID, TriggerID: res.TriggerID,
			TokenID: f.TokenID, Context: res.Context}
		if f.Err != nil {
			s.metrics.refreshFailure(f.TokenID)
			ev.Level, ev.Event, ev.Message, ev.Details = events.LevelError, events.EventTokenRefreshFailed,
				"proactive refresh before expiry failed (the current token is still used): "+f.Err.Error(), refreshFailedDetails(f.Err)
		} else {
			s.metrics.refreshed(f.TokenID)
			ev.Level, ev.Event, ev.Message, ev.Details = events.LevelInfo, events.EventTokenRefreshed,
				"token "+f.TokenID+" refreshed before it expires", refreshedDetails(&f)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if perr := s.pub.Log(ev, "").Wait(ctx); perr != nil {
			s.log.Warn("publish token refresh event", "token_id", f.TokenID, "err", perr)
		}
	}
}

// conclude maps the final call to the result and its log event.
func (s *Service) conclude(t *events.Trigger, out auth.CallOutcome, c *callResult, r *run) {
	res := r.res
	res.HTTPStatus = c.status
	if c.status != 0 {
		res.Response = &events.Response{Headers: c.headers, Body: c.body, Truncated: c.truncated}
	}
	switch {
	case c.code == events.CodeURLNotAllowed:
		res.Attempts = 0
		s.reject(r, c.code, c.message)
		return
	case c.code != "":
		res.Status = events.StatusFailed
		res.Error = &events.Error{Code: c.code, Message: c.message}
	case c.status >= 200 && c.status <= 299:
		res.Status = events.StatusSucceeded
	case c.status == 401 && out.Retried:
		res.Status = events.StatusFailed
		res.Error = &events.Error{Code: events.CodeUnauthorized, Message: "the action answered 401 again after the token was refreshed"}
	default:
		res.Status = events.StatusFailed
		res.Error = &events.Error{Code: events.CodeHTTPError, Message: fmt.Sprintf("the action answered %d", c.status)}
	}
	shown := displayURL(t.Request.URL)
	details := map[string]any{"method": t.Request.Method, "url": shown,
		"http_status": c.status, "attempts": res.Attempts, "duration_ms": c.elapsed.Milliseconds()}
	if res.TokenRefreshed {
		details["token_refreshed"] = true
	}
	if res.Status == events.StatusSucceeded {
		r.log(events.LevelInfo, events.EventActionSucceeded, t.Request.Method+" "+shown+" answered "+strconv.Itoa(c.status), details)
		return
	}
	details["code"] = res.Error.Code
	r.log(events.LevelError, events.EventActionFailed, res.Error.Message, details)
}

// displayURL drops the query and user info of u: they may carry keys.
func displayURL(u string) string {
	if !strings.ContainsAny(u, "?#@") {
		return u // nothing to drop
	}
	p, err := url.Parse(u)
	if err != nil {
		return "(invalid url)"
	}
	p.RawQuery, p.User, p.Fragment = "", nil, ""
	return p.String()
}

func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// finish publishes the result and log events, records the outcome in the
// breaker and acks; an infrastructure fault naks with a growing delay, and
// the last delivery goes to the dead-letter stream. work ends when the
// process stops waiting for its triggers.
func (s *Service) finish(work context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, r *run) {
	defer r.call.free()
	if r.infra == nil {
		if !r.res.FitIn(s.maxResult) {
			s.log.Error("result does not fit a message even without its response", "trigger_id", r.res.TriggerID, "max_payload", s.maxResult)
		}
		if err := s.store(work, r); err != nil {
			r.infra = fmt.Errorf("publish result: %w", err)
		}
	}
	if r.infra != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.retryLater(ctx, msg, meta, r)
		return
	}
	if r.done != nil {
		r.done(outcome(r.res))
	}
	s.metrics.result(r.res)
	if s.beforeAck != nil && !s.beforeAck(msg) {
		return
	}
	if err := msg.Ack(); err != nil {
		s.log.Warn("ack trigger", "trigger_id", r.res.TriggerID, "stream_seq", meta.Sequence.Stream, "err", err)
	}
	s.processed.Add(1)
}

// store publishes the log events and the result of a trigger. A publish
// that JetStream refuses or does not acknowledge (busy, a leader election)
// is tried again, for up to ResultRetry while the trigger is kept alive:
// the result is already made, and handing the trigger back would call the
// action again. Only what failed is sent again (a log event whose ack was
// lost may be stored twice; the result is deduplicated by its id).
func (s *Service) store(work context.Context, r *run) error {
	now := events.FormatTime(s.now())
	for _, ev := range r.logs {
		ev.Time = now
	}
	logs, stored := r.logs, false
	attempt := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The log events go out first, the result is stored with a
		// synchronous publish while they are on their way, then their acks
		// (most often already in) are collected.
		pend := make([]events.Pending, 0, len(logs))
		for _, ev := range logs {
			pend = append(pend, s.pub.Log(ev, ""))
		}
		var err error
		if !stored {
			if err = s.pub.StoreResult(ctx, r.res); err == nil {
				stored = true
			}
		}
		var failed []*events.LogEvent
		for i, p := range pend {
			if werr := p.Wait(ctx); werr != nil {
				failed = append(failed, logs[i])
				if err == nil {
					err = fmt.Errorf("publish log event: %w", werr)
				}
			}
		}
		logs = failed
		if errors.Is(err, nats.ErrMaxPayload) {
			return backoff.Permanent(err)
		}
		return err
	}
	err := attempt()
	if err == nil {
		return nil
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 5*time.Second, s.cfg.ResultRetry
	return backoff.RetryNotify(attempt, backoff.WithContext(b, work), func(err error, next time.Duration) {
		s.log.Warn("storing a result failed; trying again (the action is not called again)", "trigger_id", r.res.TriggerID,
			"action_id", r.res.ActionID, "err", err, "retry_in", next)
	})
}

// watchSlow returns done that also reports the call as slow as soon as it
// has run for SlowCall (resilience4j's slow-call rate): a hanging API
// counts against its breaker while its calls are still in flight. arm
// starts the clock at each call (a wait for a pause the action asked for
// is not slowness). The first report wins; the breaker hears one outcome
// per trigger.
func (s *Service) watchSlow(done func(breaker.Outcome)) (report func(breaker.Outcome), arm func()) {
	var once sync.Once
	var timer *time.Timer
	var mu sync.Mutex
	finish := func(o breaker.Outcome) { once.Do(func() { done(o) }) }
	report = func(o breaker.Outcome) {
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		finish(o)
	}
	arm = func() {
		mu.Lock()
		defer mu.Unlock()
		if timer == nil {
			timer = time.AfterFunc(s.cfg.SlowCall, func() { finish(breaker.Slow) })
		} else {
			timer.Reset(s.cfg.SlowCall)
		}
	}
	return report, arm
}

// outcome is what a live trigger's result says about its action: a pause
// the action asked for (rate_limited) and a token that needs a person
// (reauthorization_required, no call made) say nothing about its health.
func outcome(res *events.Result) breaker.Outcome {
	switch {
	case res.Status == events.StatusSucceeded:
		return breaker.Success
	case res.Status != events.StatusFailed:
		return breaker.Ignored
	case res.Error != nil && (res.Error.Code == events.CodeRateLimited || res.Error.Code == events.CodeReauthorizationRequired):
		return breaker.Ignored
	}
	return breaker.Failure
}

func (s *Service) retryLater(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, r *run) {
	if r.done != nil {
		r.done(breaker.Ignored) // release a probe slot without counting
	}
	attrs := []any{"trigger_id", r.res.TriggerID, "action_id", r.res.ActionID, "stream_seq", meta.Sequence.Stream,
		"attempt", meta.NumDelivered, "err", r.infra}
	if errors.Is(r.infra, context.Canceled) {
		// Cut short by shutdown: hand it to another replica at once.
		s.log.Warn("trigger cut short by shutdown, returned for redelivery", attrs...)
		_ = msg.Nak()
		return
	}
	if int(meta.NumDelivered) < s.cfg.MaxDeliver {
		delay := min(time.Second<<(meta.NumDelivered-1), 30*time.Second)
		s.log.Warn("trigger not finished, retrying later", append(attrs, "delay", delay)...)
		_ = msg.NakWithDelay(delay)
		return
	}
	s.deadLetter(ctx, msg, meta, r)
}
