// Package testclock is the settable clock of the tests: time stands still
// until a test moves it, so cool-downs, leases and token expiry are tested
// without sleeping (gobreaker's tests move the expiry the same way).
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable clock, safe for concurrent use. Pass its Now method
// where a package takes a clock function.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock that reads start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
