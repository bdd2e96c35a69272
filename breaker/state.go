package breaker

import (
	"fmt"
	"time"
)

// State is where a breaker is: closed (calls go through and are counted),
// open (live calls are refused until the cool-down ends) or half-open (one
// probe call is let through). It is stored and shown as "closed", "open"
// and "half_open".
type State int

// States of a breaker. The zero State is Closed.
const (
	Closed State = iota
	Open
	HalfOpen
)

var stateNames = [...]string{Closed: "closed", Open: "open", HalfOpen: "half_open"}

// String returns the stored name of the state.
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// MarshalText encodes the state as its name.
func (s State) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("breaker: unknown state %d", int(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name; an empty name is Closed.
func (s *State) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = Closed
		return nil
	}
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("breaker: unknown state %q", b)
}

// Outcome is what a call let through by Allow ended with.
type Outcome int

const (
	// Ignored: the call ended without an outcome that says anything about
	// the action (a test run, a trigger retried because of our own fault,
	// a rejection before the call). It is not counted; a probe that ends
	// Ignored frees the probe slot for another call.
	Ignored Outcome = iota
	// Success: the action answered as it should.
	Success
	// Failure: the action failed (an error status, a timeout, a refused
	// connection).
	Failure
	// Slow: the call took longer than the slow-call threshold (reported
	// while it is still in flight, so a hanging API opens its breaker
	// before its calls time out). It counts as a failure.
	Slow
)

// String returns "ignored", "success" or "failure".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Slow:
		return "slow"
	default:
		return "ignored"
	}
}

// buckets split the window, so it rolls in steps of a sixth.
const buckets = 6

// Status is a breaker as stored in KV and listed by admins.
type Status struct {
	ActionID   string `json:"action_id"`
	State      State  `json:"state"`
	Generation uint64 `json:"generation"`
	// Counts of the rolling window (closed state), summed over replicas.
	Buckets     []Bucket `json:"buckets,omitempty"`
	Consecutive int      `json:"consecutive_failures"`
	// Open and half-open.
	OpenedAtMS int64  `json:"opened_at_ms,omitempty"`
	CooldownMS int64  `json:"cooldown_ms,omitempty"`
	ProbeBy    string `json:"probe_by,omitempty"`
	ProbeUntil int64  `json:"probe_until_ms,omitempty"`
	// Reason says what caused the last transition.
	Reason    string `json:"reason,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

// Bucket counts the outcomes of one slice of the window.
type Bucket struct {
	StartMS   int64 `json:"start_ms"`
	Successes int   `json:"s"`
	Failures  int   `json:"f"`
}

// Counts returns the successes and failures in the window ending at now,
// and the run of consecutive failures.
func (st *Status) Counts(now time.Time, window time.Duration) Counts {
	c := Counts{Consecutive: st.Consecutive}
	from := now.Add(-window).UnixMilli()
	for _, b := range st.Buckets {
		if b.StartMS > from-window.Milliseconds()/buckets {
			c.Successes += b.Successes
			c.Failures += b.Failures
		}
	}
	return c
}

// add adds outcomes to the bucket of now and drops buckets older than the
// window.
func (st *Status) add(now time.Time, window time.Duration, successes, failures int) {
	step := max(window.Milliseconds()/buckets, 1)
	start := now.UnixMilli() / step * step
	from := now.Add(-window).UnixMilli() - step
	kept := st.Buckets[:0]
	for _, b := range st.Buckets {
		if b.StartMS > from {
			kept = append(kept, b)
		}
	}
	st.Buckets = kept
	if n := len(st.Buckets); n > 0 && st.Buckets[n-1].StartMS == start {
		st.Buckets[n-1].Successes += successes
		st.Buckets[n-1].Failures += failures
		return
	}
	st.Buckets = append(st.Buckets, Bucket{StartMS: start, Successes: successes, Failures: failures})
}

// OpenUntil is when the cool-down of an open breaker ends.
func (st *Status) OpenUntil() time.Time {
	return time.UnixMilli(st.OpenedAtMS + st.CooldownMS)
}

// Transition is one state change, reported by the replica that made it.
type Transition struct {
	ActionID    string
	From, To    State
	Generation  uint64
	Successes   int
	Failures    int
	Consecutive int
	Cooldown    time.Duration
	Reason      string
}
