package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"customactions/breaker"
	"customactions/events"
)

// TransitionLog returns what publishes the log event of a breaker
// transition (breaker_opened, breaker_half_open, breaker_closed) with the
// counts that caused it, through pub. Wire it to breaker.OnTransition; it
// needs no Service, so the breaker can be made first.
func TransitionLog(pub *events.Publisher, log *slog.Logger, now func() time.Time) func(breaker.Transition) {
	return func(tr breaker.Transition) { publishTransition(pub, log, now, tr) }
}

func publishTransition(pub *events.Publisher, log *slog.Logger, now func() time.Time, tr breaker.Transition) {
	ev := &events.LogEvent{Time: events.FormatTime(now()), ActionID: tr.ActionID,
		Details: map[string]any{"from": tr.From.String(), "to": tr.To.String(), "generation": tr.Generation, "reason": tr.Reason}}
	switch tr.To {
	case breaker.Open:
		ev.Level, ev.Event = events.LevelError, events.EventBreakerOpened
		ev.Message = fmt.Sprintf("circuit breaker opened (%s): live calls paused for %s", tr.Reason, tr.Cooldown)
		ev.Details["failures"], ev.Details["successes"], ev.Details["consecutive_failures"] = tr.Failures, tr.Successes, tr.Consecutive
		ev.Details["cooldown_ms"] = tr.Cooldown.Milliseconds()
	case breaker.HalfOpen:
		ev.Level, ev.Event = events.LevelWarn, events.EventBreakerHalfOpen
		ev.Message = "circuit breaker half-open: one probe call is let through"
	default:
		ev.Level, ev.Event = events.LevelInfo, events.EventBreakerClosed
		ev.Message = "circuit breaker closed (" + tr.Reason + "): live calls resume"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgID := fmt.Sprintf("breaker-%s-%d", tr.ActionID, tr.Generation)
	if err := pub.Log(ev, msgID).Wait(ctx); err != nil {
		log.Warn("publish breaker event", "action_id", tr.ActionID, "event", ev.Event, "err", err)
	}
	log.Info("breaker transition", "action_id", tr.ActionID, "from", tr.From, "to", tr.To, "reason", tr.Reason)
}
