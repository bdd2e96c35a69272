package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"customactions/auth"
	"customactions/events"
)

// MaxConnectTTL is the longest a connect link may stay valid: the states
// bucket forgets its entries after that (each link also records its own,
// shorter, expiry).
const MaxConnectTTL = time.Hour

// ConnectionNamesOf are the names of the objects of per-end-user
// connections (contract §11) of one prefix.
type ConnectionNamesOf struct {
	// Stream keeps the connection events (prefix.connection.<token id>).
	Stream string
	// Bucket holds the connections, StatesBucket the pending links.
	Bucket, StatesBucket string
}

// ConnectionNames are the connection objects of prefix: ACTIONS_CONNECTIONS,
// action_connections and action_connect_states for the default prefix,
// else UPPER(prefix)_CONNECTIONS, prefix_action_connections and
// prefix_action_connect_states.
func ConnectionNames(prefix string) ConnectionNamesOf {
	if prefix == events.DefaultPrefix {
		return ConnectionNamesOf{Stream: "ACTIONS_CONNECTIONS", Bucket: events.DefaultConnectionsBucket, StatesBucket: events.DefaultConnectStatesBucket}
	}
	return ConnectionNamesOf{Stream: strings.ToUpper(prefix) + "_CONNECTIONS",
		Bucket: prefix + "_" + events.DefaultConnectionsBucket, StatesBucket: prefix + "_" + events.DefaultConnectStatesBucket}
}

// ConnectionLog returns what publishes, for every connection made through
// the browser (auth.Connector.OnConnected), the connection event on
// prefix.connection.<token id> (so the producer can send the trigger that
// asked again) and the log event connection_created on the tokens' log. It
// publishes on its own goroutine (the hook must not block).
func ConnectionLog(pub *events.Publisher, log *slog.Logger, now func() time.Time) func(auth.Connected) {
	return func(c auth.Connected) {
		at := events.FormatTime(c.At)
		ce := &events.ConnectionEvent{TokenID: c.TokenID, EndUserID: c.EndUserID, Status: events.ConnectionConnected,
			TriggerID: c.TriggerID, ActionID: c.ActionID, Time: at}
		who := "the workspace"
		if c.EndUserID != "" {
			who = "end user " + c.EndUserID
		}
		details := map[string]any{"end_user_id": c.EndUserID}
		if c.ActionID != "" {
			details["action_id"] = c.ActionID
		}
		ev := &events.LogEvent{Time: events.FormatTime(now()), Level: events.LevelInfo, Event: events.EventConnectionCreated,
			ActionID: TokenEventsActionID, TriggerID: c.TriggerID, TokenID: c.TokenID,
			Message: "token " + c.TokenID + " connected for " + who, Details: details}
		log.Info("connection created", "token_id", c.TokenID, "end_user_id", c.EndUserID, "trigger_id", c.TriggerID)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			id := fmt.Sprintf("connected-%s-%s-%d", c.TokenID, c.EndUserID, c.At.UnixNano())
			if err := events.WaitAll(ctx, pub.Connection(ce, id), pub.Log(ev, id)); err != nil {
				log.Warn("publish connection event", "token_id", c.TokenID, "end_user_id", c.EndUserID, "err", err)
			}
		}()
	}
}

// ConnectionDeletedLog publishes connection_created's counterpart,
// connection_deleted, for an admin's deletion.
func ConnectionDeletedLog(ctx context.Context, pub *events.Publisher, now func() time.Time, tokenID, endUserID string, details map[string]any) error {
	who := "the workspace"
	if endUserID != "" {
		who = "end user " + endUserID
	}
	if details == nil {
		details = map[string]any{}
	}
	details["end_user_id"] = endUserID
	ev := &events.LogEvent{Time: events.FormatTime(now()), Level: events.LevelInfo, Event: events.EventConnectionDeleted,
		ActionID: TokenEventsActionID, TokenID: tokenID, Message: "connection of token " + tokenID + " for " + who + " deleted", Details: details}
	return pub.Log(ev, "").Wait(ctx)
}
