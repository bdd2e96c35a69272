package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Trigger is the message a producer publishes to ask for one HTTP call.
type Trigger struct {
	ID       string          `json:"id"`
	ActionID string          `json:"action_id"`
	Source   string          `json:"source"`
	TokenID  string          `json:"token_id,omitempty"`
	Request  Request         `json:"request"`
	Context  json.RawMessage `json:"context,omitempty"`
	// EndUser is the person the inbox or bot talks to; a token with
	// per-end-user connections calls the action as them (contract §11).
	EndUser *EndUser `json:"end_user,omitempty"`
}

// EndUser names the end user of a trigger.
type EndUser struct {
	ID string `json:"id"`
}

// EndUserID is the trigger's end user id, "" when it names none.
func (t *Trigger) EndUserID() string {
	if t.EndUser == nil {
		return ""
	}
	return t.EndUser.ID
}

// Request is the HTTP call a trigger asks for.
type Request struct {
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      string            `json:"body,omitempty"`
	TimeoutMS int64             `json:"timeout_ms,omitempty"`
	// SensitiveHeaders names headers of the request that carry secrets
	// (beyond the token's header and the well-known credential headers):
	// they are dropped when the action redirects to another host.
	SensitiveHeaders []string `json:"sensitive_headers,omitempty"`
}

// Timeout is the per-attempt timeout the request asks for, or 0 when it
// asks for none (timeout_ms absent, zero or negative) and the caller's
// default applies. It never overflows: a timeout_ms too large for a
// time.Duration gives the largest Duration. A trigger that Decode accepted
// asks for at most its Limits.MaxTimeout.
func (r *Request) Timeout() time.Duration {
	switch {
	case r.TimeoutMS <= 0:
		return 0
	case r.TimeoutMS > math.MaxInt64/int64(time.Millisecond):
		return math.MaxInt64
	}
	return time.Duration(r.TimeoutMS) * time.Millisecond
}

// Live reports whether the trigger is a live run (not from the Test button).
func (t *Trigger) Live() bool { return t.Source != SourceTest }

// Limits bound what a trigger may ask for. A zero field takes the default
// written beside it. Nesting is bounded by MaxDepth, which is not a
// setting.
type Limits struct {
	MaxTriggerBytes int           // 256 KiB
	MaxHeaders      int           // 64, counted as written (a repeated name counts again)
	MaxHeaderBytes  int           // 16 KiB, names and values of all headers together
	MaxTimeout      time.Duration // 60 s
}

func (l Limits) withDefaults() Limits {
	if l.MaxTriggerBytes <= 0 {
		l.MaxTriggerBytes = 256 << 10
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = 64
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 16 << 10
	}
	if l.MaxTimeout <= 0 {
		l.MaxTimeout = 60 * time.Second
	}
	return l
}

// InvalidError says why a trigger was refused. Code is CodeInvalidTrigger.
type InvalidError struct {
	Message string
}

func (e *InvalidError) Error() string { return "invalid trigger: " + e.Message }

func invalid(format string, args ...any) error {
	return &InvalidError{Message: fmt.Sprintf(format, args...)}
}

// Decode parses and validates a trigger received on subject. On error the
// returned trigger holds whatever could be read (id, action id, source,
// token id, context), so the rejection can still name it; the error is an
// *InvalidError whose message says exactly what is wrong.
//
// Even on error, the returned trigger's ActionID is empty or a valid id
// (ValidID) and its Source empty or a valid source: the subject's when it
// is well-formed, else the body's when that is valid. Its ID is empty or a
// valid trigger id (1 to 128 bytes of UTF-8 without control characters),
// its TokenID empty or a valid id, its Context empty or a JSON object. So a
// rejection can always be published, with Subjects.ResultFor and
// Subjects.LogFor for a trigger that has no action id.
func Decode(subjects Subjects, subject string, data []byte, limits Limits) (*Trigger, error) {
	limits = limits.withDefaults()
	subSource, subAction, subErr := subjects.ParseTrigger(subject)
	if len(data) > limits.MaxTriggerBytes {
		return &Trigger{Source: subSource, ActionID: subAction},
			invalid("trigger is %d bytes, more than the maximum of %d", len(data), limits.MaxTriggerBytes)
	}
	t := &Trigger{}
	if err := decodeJSON(data, t, limits); err != nil {
		// Keep the subject's names for the rejection, not a half-decoded body.
		return (&Trigger{ID: t.ID, ActionID: t.ActionID, Source: t.Source}).forRejection(subSource, subAction), err
	}
	if subErr != nil {
		return t.forRejection(subSource, subAction), invalid("%v", subErr)
	}
	if err := t.validate(subSource, subAction, limits); err != nil {
		return t.forRejection(subSource, subAction), err
	}
	return t, nil
}

// decodeJSON reads data into t: the fast decoder for the common shape,
// else checkWellFormed, checkHeaderCount and encoding/json. Both paths
// accept the same input and give the same trigger (FuzzFastDecode).
func decodeJSON(data []byte, t *Trigger, limits Limits) error {
	if fastDecode(data, t, limits.MaxHeaders) {
		return nil
	}
	*t = Trigger{}
	if err := checkWellFormed(data); err != nil {
		return err
	}
	if err := checkHeaderCount(data, limits.MaxHeaders); err != nil {
		return err
	}
	err := json.Unmarshal(data, t)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field == "request.timeout_ms" {
		got := te.Value
		if len(got) > 40 {
			got = got[:40] + "..."
		}
		return invalid("request.timeout_ms must be a whole number of milliseconds from 0 to %d, got %s",
			limits.MaxTimeout.Milliseconds(), got)
	}
	return invalid("body is not a valid trigger JSON object: %v", err)
}

// forRejection keeps of t only what a rejection may carry (see Decode): the
// subject's action id and source when valid, else the body's when valid.
func (t *Trigger) forRejection(subSource, subAction string) *Trigger {
	t.ActionID = firstValid(ValidID, subAction, t.ActionID)
	t.Source = firstValid(ValidSource, subSource, t.Source)
	t.ID = firstValid(ValidTriggerID, t.ID)
	t.TokenID = firstValid(ValidID, t.TokenID)
	if t.EndUser != nil && !ValidID(t.EndUser.ID) {
		t.EndUser = nil
	}
	if len(t.Context) > 0 && t.Context[0] != '{' {
		t.Context = nil
	}
	return t
}

func firstValid(valid func(string) bool, candidates ...string) string {
	for _, c := range candidates {
		if valid(c) {
			return c
		}
	}
	return ""
}

// ValidTriggerID reports whether s may be a trigger id: 1 to 128 bytes of
// UTF-8 without control characters, since it is sent as the
// Idempotency-Key header and in the result's Nats-Msg-Id header.
func ValidTriggerID(s string) bool {
	if len(s) == 0 || len(s) > 128 || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func (t *Trigger) validate(subSource, subAction string, limits Limits) error {
	switch {
	case t.ID == "":
		return invalid("missing field id")
	case len(t.ID) > 128:
		return invalid("id is %d characters, more than 128", len(t.ID))
	case !ValidTriggerID(t.ID):
		return invalid("id %q must not contain control characters", t.ID)
	case t.ActionID == "":
		return invalid("missing field action_id")
	case t.ActionID != subAction:
		return invalid("action_id %q does not match the subject's action id %q", t.ActionID, subAction)
	case !ValidID(t.ActionID):
		return invalid("action_id %q must match ^[A-Za-z0-9_-]{1,128}$", t.ActionID)
	case t.Source == "":
		return invalid("missing field source")
	case t.Source != subSource:
		return invalid("source %q does not match the subject's source %q", t.Source, subSource)
	case !ValidSource(t.Source):
		return invalid("source %q must be one of inbox, bot, test", t.Source)
	case t.TokenID != "" && !ValidID(t.TokenID):
		return invalid("token_id %q must match ^[A-Za-z0-9_-]{1,128}$", t.TokenID)
	case t.EndUser != nil && t.EndUser.ID == "":
		return invalid("missing field end_user.id")
	case t.EndUser != nil && !ValidID(t.EndUser.ID):
		return invalid("end_user.id %q must match ^[A-Za-z0-9_-]{1,128}$", t.EndUser.ID)
	}
	if len(t.Context) > 0 && string(t.Context) != "null" && t.Context[0] != '{' {
		return invalid("context must be a JSON object")
	}
	return t.Request.validate(limits)
}

func (r *Request) validate(limits Limits) error {
	switch {
	case r.Method == "":
		return invalid("missing field request.method")
	case !validToken(r.Method):
		return invalid("request.method %q is not an HTTP method", r.Method)
	case r.URL == "":
		return invalid("missing field request.url")
	}
	u, err := ParseHTTPURL(r.URL)
	switch {
	case err != nil:
		return invalid("request.url %v", err)
	case u.User != nil:
		return invalid("request.url must not carry user info; use a token")
	}
	if len(r.Headers) > limits.MaxHeaders {
		return invalid("request.headers has %d headers, more than the maximum of %d", len(r.Headers), limits.MaxHeaders)
	}
	size := 0
	for k, v := range r.Headers {
		if !validToken(k) {
			return invalid("request.headers: %q is not a valid header name", k)
		}
		if !validHeaderValue(v) {
			return invalid("request.headers: the value of %q has a control character", k)
		}
		size += len(k) + len(v)
	}
	if size > limits.MaxHeaderBytes {
		return invalid("request.headers are %d bytes, more than the maximum of %d", size, limits.MaxHeaderBytes)
	}
	if len(r.SensitiveHeaders) > limits.MaxHeaders {
		return invalid("request.sensitive_headers has %d names, more than the maximum of %d", len(r.SensitiveHeaders), limits.MaxHeaders)
	}
	for _, k := range r.SensitiveHeaders {
		if !validToken(k) {
			return invalid("request.sensitive_headers: %q is not a valid header name", k)
		}
	}
	// Compared in milliseconds: converting timeout_ms to a Duration first
	// would wrap for huge values and let them through (issue 13).
	switch maxMS := limits.MaxTimeout.Milliseconds(); {
	case r.TimeoutMS < 0:
		return invalid("request.timeout_ms must not be negative")
	case r.TimeoutMS > maxMS:
		return invalid("request.timeout_ms %d is more than the maximum of %d", r.TimeoutMS, maxMS)
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token (a method or header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 128 && isTokenPunct[c]:
		default:
			return false
		}
	}
	return true
}

var isTokenPunct = [128]bool{'!': true, '#': true, '$': true, '%': true, '&': true, '\'': true,
	'*': true, '+': true, '-': true, '.': true, '^': true, '_': true, '`': true, '|': true, '~': true}

// ValidHeaderName reports whether s may be used as an HTTP header name.
func ValidHeaderName(s string) bool { return validToken(s) }

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
