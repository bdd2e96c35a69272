package events

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Trigger is the message a producer publishes to ask for one HTTP call.
type Trigger struct {
	ID       string          `json:"id"`
	ActionID string          `json:"action_id"`
	Source   string          `json:"source"`
	TokenID  string          `json:"token_id,omitempty"`
	Request  Request         `json:"request"`
	Context  json.RawMessage `json:"context,omitempty"`
}

// Request is the HTTP call a trigger asks for.
type Request struct {
	Method    string            `json:"method"`
	URL       string            `json:"url"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      string            `json:"body,omitempty"`
	TimeoutMS int64             `json:"timeout_ms,omitempty"`
}

// Live reports whether the trigger is a live run (not from the Test button).
func (t *Trigger) Live() bool { return t.Source != SourceTest }

// Limits bound what a trigger may ask for. A zero field takes the default
// written beside it.
type Limits struct {
	MaxTriggerBytes int           // 256 KiB
	MaxHeaders      int           // 64
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
// context), so the rejection can still name it; the error is an
// *InvalidError whose message says exactly what is wrong.
func Decode(subjects Subjects, subject string, data []byte, limits Limits) (*Trigger, error) {
	limits = limits.withDefaults()
	t := &Trigger{}
	subSource, subAction, subErr := subjects.ParseTrigger(subject)
	t.Source, t.ActionID = subSource, subAction
	if len(data) > limits.MaxTriggerBytes {
		return t, invalid("trigger is %d bytes, more than the maximum of %d", len(data), limits.MaxTriggerBytes)
	}
	if subErr != nil {
		return t, invalid("%v", subErr)
	}
	body := &Trigger{}
	if !fastDecode(data, body) {
		body = &Trigger{}
		if err := json.Unmarshal(data, body); err != nil {
			// Keep the subject's names for the rejection, not a half-decoded body.
			return &Trigger{Source: subSource, ActionID: subAction, ID: body.ID},
				invalid("body is not a valid trigger JSON object: %v", err)
		}
	}
	return body, body.validate(subSource, subAction, limits)
}

func (t *Trigger) validate(subSource, subAction string, limits Limits) error {
	switch {
	case t.ID == "":
		return invalid("missing field id")
	case len(t.ID) > 128:
		return invalid("id is %d characters, more than 128", len(t.ID))
	case t.ActionID == "":
		t.ActionID = subAction
		return invalid("missing field action_id")
	case t.ActionID != subAction:
		got := t.ActionID
		t.ActionID = subAction
		return invalid("action_id %q does not match the subject's action id %q", got, subAction)
	case !ValidID(t.ActionID):
		return invalid("action_id %q must match ^[A-Za-z0-9_-]{1,128}$", t.ActionID)
	case t.Source == "":
		t.Source = subSource
		return invalid("missing field source")
	case t.Source != subSource:
		got := t.Source
		t.Source = subSource
		return invalid("source %q does not match the subject's source %q", got, subSource)
	case !ValidSource(t.Source):
		return invalid("source %q must be one of inbox, bot, test", t.Source)
	case t.TokenID != "" && !ValidID(t.TokenID):
		return invalid("token_id %q must match ^[A-Za-z0-9_-]{1,128}$", t.TokenID)
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
	u, err := url.Parse(r.URL)
	switch {
	case err != nil:
		return invalid("request.url is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return invalid("request.url must be an absolute http or https URL, got scheme %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return invalid("request.url %q has no host", r.URL)
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
	switch {
	case r.TimeoutMS < 0:
		return invalid("request.timeout_ms must not be negative")
	case time.Duration(r.TimeoutMS)*time.Millisecond > limits.MaxTimeout:
		return invalid("request.timeout_ms %d is more than the maximum of %d", r.TimeoutMS, limits.MaxTimeout.Milliseconds())
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
