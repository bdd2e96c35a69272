package breaker

import "errors"

// ErrOpen is returned by Breaker.Allow when the action is paused.
var ErrOpen = errors.New("circuit breaker is open")
