package events

import "encoding/json"

// Log event names.
const (
	EventActionSucceeded    = "action_succeeded"
	EventActionFailed       = "action_failed"
	EventTriggerRejected    = "trigger_rejected"
	EventTokenRefreshed     = "token_refreshed"
	EventTokenRefreshFailed = "token_refresh_failed"
	EventBreakerOpened      = "breaker_opened"
	EventBreakerHalfOpen    = "breaker_half_open"
	EventBreakerClosed      = "breaker_closed"
	EventBreakerRejected    = "breaker_rejected"
	EventDeadLettered       = "trigger_dead_lettered"
	// EventActionThrottled and EventActionUnthrottled: the action asked
	// for a pause (429 or 503 with Retry-After) and every replica holds
	// back until it ends.
	EventActionThrottled   = "action_throttled"
	EventActionUnthrottled = "action_unthrottled"
	// EventTokenReauthorizationRequired and EventTokenRecovered report a
	// change of an oauth2 token's health, once per change.
	EventTokenReauthorizationRequired = "token_reauthorization_required"
	EventTokenRecovered               = "token_recovered"
	// EventConnectionCreated: an end user (or an admin) connected an
	// authorization_code token; EventConnectionDeleted: an admin deleted
	// a connection (contract §11).
	EventConnectionCreated = "connection_created"
	EventConnectionDeleted = "connection_deleted"
	// EventAuthorizationRequired: a trigger's end user was sent a connect
	// link (result status authorization_required); the link itself is in
	// the result only.
	EventAuthorizationRequired = "authorization_required"
)

// Log levels.
const (
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// LogEvent is one line of an action's Logs tab, published on Subjects.Log.
type LogEvent struct {
	Time      string          `json:"time"`
	Level     string          `json:"level"`
	Event     string          `json:"event"`
	ActionID  string          `json:"action_id"`
	TriggerID string          `json:"trigger_id,omitempty"`
	TokenID   string          `json:"token_id,omitempty"`
	Message   string          `json:"message"`
	Details   map[string]any  `json:"details,omitempty"`
	Context   json.RawMessage `json:"context,omitempty"`
}
