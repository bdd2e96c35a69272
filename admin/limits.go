package admin

import (
	"context"
	"errors"

	"customactions/breaker"
	"customactions/events"
)

// Limiter is what the limits requests need; *breaker.Breaker satisfies
// it (the limits live in the breakers bucket).
type Limiter interface {
	SetLimits(ctx context.Context, l breaker.Limits) (breaker.Limits, error)
	GetLimits(actionID string) (breaker.Limits, bool)
	ListLimits(ctx context.Context) ([]breaker.Limits, error)
	DeleteLimits(ctx context.Context, actionID string) (bool, error)
}

func (a *Service) limiter() (Limiter, error) {
	if l, ok := a.breakers.(Limiter); ok {
		return l, nil
	}
	return nil, errorf(CodeInternal, "limits need the circuit breaker's bucket, which is not enabled")
}

// SetLimits sets the limits of an action for every replica: a rate (calls
// per second, with a burst) and a maximum of concurrent calls; 0 is no
// limit.
//
// Errors: *Error with CodeBadRequest when a value is out of range.
func (a *Service) SetLimits(ctx context.Context, l breaker.Limits) (breaker.Limits, error) {
	lim, err := a.limiter()
	if err != nil {
		return breaker.Limits{}, err
	}
	if !events.ValidID(l.ActionID) {
		return breaker.Limits{}, errorf(CodeBadRequest, "action_id %q must match ^[A-Za-z0-9_-]{1,128}$", l.ActionID)
	}
	out, err := lim.SetLimits(ctx, l)
	if errors.Is(err, breaker.ErrInvalidLimits) {
		return breaker.Limits{}, &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return out, err
}

// Limits returns the limits of an action.
//
// Errors: *Error with CodeNotFound when it has none.
func (a *Service) Limits(actionID string) (breaker.Limits, error) {
	lim, err := a.limiter()
	if err != nil {
		return breaker.Limits{}, err
	}
	l, ok := lim.GetLimits(actionID)
	if !ok {
		return breaker.Limits{}, errorf(CodeNotFound, "action %q has no limits", actionID)
	}
	return l, nil
}

// ListLimits returns the limits of every action that has some.
func (a *Service) ListLimits(ctx context.Context) ([]breaker.Limits, error) {
	lim, err := a.limiter()
	if err != nil {
		return nil, err
	}
	list, err := lim.ListLimits(ctx)
	if list == nil {
		list = []breaker.Limits{}
	}
	return list, err
}

// DeleteLimits removes the limits of an action.
//
// Errors: *Error with CodeNotFound when it had none.
func (a *Service) DeleteLimits(ctx context.Context, actionID string) error {
	lim, err := a.limiter()
	if err != nil {
		return err
	}
	had, err := lim.DeleteLimits(ctx, actionID)
	if err == nil && !had {
		return errorf(CodeNotFound, "action %q has no limits", actionID)
	}
	return err
}
