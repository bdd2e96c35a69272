package admin

import (
	"context"

	"customactions/breaker"
)

// ListBreakers returns the state of every action that has a breaker state.
func (a *Service) ListBreakers(ctx context.Context) ([]breaker.Status, error) {
	if a.breakers == nil {
		return nil, errorf(CodeInternal, "the circuit breaker is not enabled")
	}
	list, err := a.breakers.List(ctx)
	if list == nil {
		list = []breaker.Status{}
	}
	return list, err
}

// ResetBreaker closes the breaker of an action for every replica.
func (a *Service) ResetBreaker(ctx context.Context, actionID string) (breaker.Status, error) {
	if a.breakers == nil {
		return breaker.Status{}, errorf(CodeInternal, "the circuit breaker is not enabled")
	}
	return a.breakers.Reset(ctx, actionID)
}
