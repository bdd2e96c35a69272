package auth

// The health of oauth2 tokens: shared by every replica in the connection
// record, and reported once per change to a hook.

import (
	"errors"
	"time"
)

// Health statuses of an oauth2 token (contract §10).
const (
	HealthOK = "ok"
	// HealthDegraded: the token endpoint failed transiently (network, 5xx,
	// 429); calls go on trying.
	HealthDegraded = "degraded"
	// HealthReauthorizationRequired: the connection cannot be used until
	// an admin saves the token again (a new refresh token, a fixed client)
	// or a person reconnects it; calls fail without a request.
	HealthReauthorizationRequired = "reauthorization_required"
)

// ErrReauthorizationRequired is wrapped by Authenticator.Do when the oauth2
// token of a call needs reauthorization: neither the token endpoint nor the
// action was called (or the token endpoint refused the refresh that this
// call made). The error's text says why and holds no secret.
var ErrReauthorizationRequired = errors.New("reauthorization required")

// ErrTestFailed is wrapped by Manager.SaveOAuth2 when the test-before-save
// fails; the error's text says why and holds no secret.
var ErrTestFailed = errors.New("token test failed")

// Messages of the reauthorization_required causes that are not an answer
// of the token endpoint.
const (
	reasonInterrupted      = "a refresh was interrupted after the refresh token was sent; reconnect or paste a new refresh token"
	reasonNotConnected     = "not connected: no refresh token; connect the token or paste a refresh token"
	reasonUserNotConnected = "the end user has not connected yet"
	reasonOtherClient      = "the refresh token was issued for another token_url or client_id; paste a new refresh token"
)

// Health is the shared health of an oauth2 token.
type Health struct {
	Status    string
	ChangedAt time.Time
	// LastError is why the status is not ok, with secrets masked.
	LastError string
}

// HealthChange is a change of an oauth2 token's health, reported once, by
// the replica whose compare-and-set made it.
type HealthChange struct {
	TokenID string
	// EndUserID is set for the connection of an end user (per_end_user).
	EndUserID string
	// From is "" for a token that had no connection record.
	From, To string
	At       time.Time
	Reason   string
}

// OnHealthChange sets the function that hears every change of an oauth2
// token's health made by this Manager (each change is made by exactly one
// replica, so across all replicas each is heard once). It is called on the
// goroutine that made the change: it must not block.
func (m *Manager) OnHealthChange(f func(HealthChange)) {
	m.oauth.mu.Lock()
	m.oauth.hook = f
	m.oauth.mu.Unlock()
}

// reportHealth calls the hook when next's status differs from prev's.
func (m *Manager) reportHealth(id string, prev, next *oauthConn) {
	from := ""
	if prev != nil {
		from = prev.Health.Status
	}
	if next == nil || from == next.Health.Status {
		return
	}
	m.oauth.mu.Lock()
	hook := m.oauth.hook
	m.oauth.mu.Unlock()
	if hook != nil {
		id, user := splitConnName(id)
		hook(HealthChange{TokenID: id, EndUserID: user, From: from, To: next.Health.Status, At: next.Health.ChangedAt, Reason: next.Health.LastError})
	}
}

// reauthError is the error of a call on a connection (named as in
// connRef.name) that needs reauthorization.
func reauthError(name, reason string) error { return &reauthorization{name: name, reason: reason} }

// reauthorization is an error wrapping ErrReauthorizationRequired.
type reauthorization struct{ name, reason string }

func (e *reauthorization) Error() string {
	return describeConn(e.name) + ": " + ErrReauthorizationRequired.Error() + ": " + e.reason
}

func (e *reauthorization) Unwrap() error { return ErrReauthorizationRequired }
