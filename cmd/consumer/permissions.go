package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
)

// permissionError is a permissions violation the NATS server reported to a
// tool: its user may not publish or subscribe to Subject.
type permissionError struct {
	Op      string // "publish to" or "subscribe to"
	Subject string
	err     error
}

func (e *permissionError) Error() string {
	perm := "publish"
	if e.Op == "subscribe to" {
		perm = "subscribe"
	}
	return fmt.Sprintf("the NATS user may not %s %s: ask for %s permission on it for this user, or use a user that has it (see deploy/nats/accounts.conf)",
		e.Op, e.Subject, perm)
}

func (e *permissionError) Unwrap() error { return e.err }

var permissionRe = regexp.MustCompile(`Permissions Violation for (Publish|Subscription) to "([^"]+)"`)

// asPermissionError returns err as a *permissionError when it is a
// permissions violation (nats.ErrPermissionViolation), else nil.
func asPermissionError(err error) *permissionError {
	if err == nil || !errors.Is(err, nats.ErrPermissionViolation) {
		return nil
	}
	pe := &permissionError{Op: "publish to", Subject: "a subject", err: err}
	if m := permissionRe.FindStringSubmatch(err.Error()); m != nil {
		pe.Subject = m[2]
		if m[1] == "Subscription" {
			pe.Op = "subscribe to"
		}
	}
	return pe
}

// guard returns a context that ends at the first permissions violation the
// tool's connection reports, so a request or a wait that the server will
// never answer fails at once; explain turns the error of an operation on
// that context into the violation. stop releases the watcher.
func (c *conn) guard(ctx context.Context) (gctx context.Context, stop func()) {
	gctx, cancel := context.WithCancelCause(ctx)
	go func() {
		for {
			select {
			case err := <-c.errs:
				if pe := asPermissionError(err); pe != nil {
					cancel(pe)
					return
				}
			case <-gctx.Done():
				return
			}
		}
	}()
	return gctx, func() { cancel(nil) }
}

// explain returns the permissions violation that ended ctx (see guard) in
// place of err, or err.
func explain(ctx context.Context, err error) error {
	var pe *permissionError
	if err != nil && errors.As(context.Cause(ctx), &pe) {
		return pe
	}
	return err
}

// subscribeAllowed flushes nc after a subscription to subject and reports
// the permissions violation the server answered it with, if any: the
// server's error arrives before the flush's PONG.
func subscribeAllowed(nc *nats.Conn, subject string) error {
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return nil // not a verdict on permissions: the wait that follows will tell
	}
	if pe := asPermissionError(nc.LastError()); pe != nil && pe.Subject == subject {
		return pe
	}
	return nil
}
