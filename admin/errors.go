package admin

import (
	"errors"
	"fmt"
)

// Codes of *Error, the "code" of an error reply.
const (
	CodeBadRequest   = "bad_request"
	CodeInvalidToken = "invalid_token"
	CodeNotFound     = "not_found"
	CodeTestFailed   = "token_test_failed"
	CodeInternal     = "internal"
	CodeUnknown      = "unknown_request"
)

// Error is an error an admin can act on: a code and a message that says
// what is wrong. It encodes as the contract's {"code", "message"}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	err     error  // the cause, for errors.Is; not shown
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause, when the error has one.
func (e *Error) Unwrap() error { return e.err }

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error: itself when it is one, otherwise an
// internal error with err's message. It returns nil for a nil err.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// ErrorReply is the body of an error reply: {"error": {"code", "message"}}.
func ErrorReply(err error) map[string]*Error {
	return map[string]*Error{"error": AsError(err)}
}
