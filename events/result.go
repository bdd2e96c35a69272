package events

import (
	"encoding/json"
	"time"
)

// Statuses of a result.
const (
	StatusSucceeded   = "succeeded"
	StatusFailed      = "failed"
	StatusRejected    = "rejected"
	StatusBreakerOpen = "breaker_open"
	// StatusAuthorizationRequired: the trigger's end user has not
	// connected the token's provider (or must connect again); no call was
	// made and the result carries authorization_url (contract §11).
	StatusAuthorizationRequired = "authorization_required"
)

// Error codes of a result.
const (
	CodeInvalidTrigger     = "invalid_trigger"
	CodeTokenNotFound      = "token_not_found"
	CodeTokenRefreshFailed = "token_refresh_failed"
	CodeUnauthorized       = "unauthorized"
	CodeHTTPError          = "http_error"
	CodeTimeout            = "timeout"
	CodeNetworkError       = "network_error"
	CodeURLNotAllowed      = "url_not_allowed"
	CodeBreakerOpen        = "breaker_open"
	// CodeRateLimited: the action answered 429 or 503 with Retry-After
	// (or is throttled after such an answer) and the trigger's deadline
	// does not allow waiting; the result carries retry_after_ms.
	CodeRateLimited = "rate_limited"
	// CodeReauthorizationRequired: the oauth2 token needs a person to
	// reconnect it or paste a new refresh token; no call was made.
	CodeReauthorizationRequired = "reauthorization_required"
	// CodeAuthorizationRequired goes with StatusAuthorizationRequired.
	CodeAuthorizationRequired = "authorization_required"
)

// Result is published once per trigger on Subjects.Result.
type Result struct {
	TriggerID      string    `json:"trigger_id"`
	ActionID       string    `json:"action_id"`
	Source         string    `json:"source"`
	TokenID        string    `json:"token_id,omitempty"`
	Status         string    `json:"status"`
	HTTPStatus     int       `json:"http_status"`
	Response       *Response `json:"response"`
	Attempts       int       `json:"attempts"`
	TokenRefreshed bool      `json:"token_refreshed"`
	Error          *Error    `json:"error"`
	StartedAt      string    `json:"started_at"`
	FinishedAt     string    `json:"finished_at"`
	DurationMS     int64     `json:"duration_ms"`
	// RetryAfterMS is how long the action asked callers to wait (added
	// field, with code rate_limited).
	RetryAfterMS int64           `json:"retry_after_ms,omitempty"`
	Context      json.RawMessage `json:"context,omitempty"`
	// EndUserID is the trigger's end_user.id (added field).
	EndUserID string `json:"end_user_id,omitempty"`
	// AuthorizationURL is the link for the end user to connect, with
	// status authorization_required: single use, it expires.
	AuthorizationURL string `json:"authorization_url,omitempty"`
}

// ConnectionEvent is published on Subjects.Connection when an end user
// (or an admin, for a workspace-wide token) connected an
// authorization_code token: the producer may send the trigger that asked
// again, under a new id.
type ConnectionEvent struct {
	TokenID   string `json:"token_id"`
	EndUserID string `json:"end_user_id,omitempty"`
	// Status is ConnectionConnected.
	Status    string `json:"status"`
	TriggerID string `json:"trigger_id,omitempty"`
	ActionID  string `json:"action_id,omitempty"`
	Time      string `json:"time"`
}

// ConnectionConnected is the status of a ConnectionEvent.
const ConnectionConnected = "connected"

// Response is the final response of the action URL, its body capped.
type Response struct {
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
	Truncated bool              `json:"truncated"`
}

// Error is the code and message of a result or an admin reply that failed.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// TimeLayout is the layout of every timestamp of the contract: UTC with
// milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t with TimeLayout in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }
