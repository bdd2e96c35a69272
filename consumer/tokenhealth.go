package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"customactions/auth"
	"customactions/events"
)

// TokenEventsActionID stands for the action id in the subject and body of
// the log events of a token's health: a token serves many actions, and its
// health changes once for all of them (actions.log._tokens).
const TokenEventsActionID = "_tokens"

// TokenHealthLog returns what publishes token_reauthorization_required and
// token_recovered when an oauth2 token's health changes. Wire it to
// auth.Manager.OnHealthChange: each change is made, and so reported, by
// one replica. It publishes on its own goroutine (the hook must not block).
func TokenHealthLog(pub *events.Publisher, log *slog.Logger, now func() time.Time) func(auth.HealthChange) {
	return func(c auth.HealthChange) {
		ev := &events.LogEvent{Time: events.FormatTime(now()), ActionID: TokenEventsActionID, TokenID: c.TokenID,
			Details: map[string]any{"from": c.From, "to": c.To, "changed_at": events.FormatTime(c.At)}}
		// An end user's connection (per_end_user) has a health of its own:
		// its events name the user, and one user's change never takes the
		// message id of another's.
		who, msgKey := "token "+c.TokenID, c.TokenID
		if c.EndUserID != "" {
			ev.Details["end_user_id"] = c.EndUserID
			who, msgKey = who+" (end user "+c.EndUserID+")", c.TokenID+"."+c.EndUserID
		}
		switch {
		case c.To == auth.HealthReauthorizationRequired:
			ev.Level, ev.Event = events.LevelError, events.EventTokenReauthorizationRequired
			ev.Message = who + " needs reauthorization: " + c.Reason
		case c.From == auth.HealthReauthorizationRequired:
			ev.Level, ev.Event = events.LevelInfo, events.EventTokenRecovered
			ev.Message = who + " recovered"
		default:
			log.Info("oauth2 token health", "token_id", c.TokenID, "end_user_id", c.EndUserID, "from", c.From, "to", c.To, "reason", c.Reason)
			return
		}
		log.Warn("oauth2 token health", "token_id", c.TokenID, "end_user_id", c.EndUserID, "event", ev.Event, "reason", c.Reason)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			msgID := fmt.Sprintf("token-health-%s-%s-%d", msgKey, c.To, c.At.UnixMilli())
			if err := pub.Log(ev, msgID).Wait(ctx); err != nil {
				log.Warn("publish token health event", "token_id", c.TokenID, "event", ev.Event, "err", err)
			}
		}()
	}
}
