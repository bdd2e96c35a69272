package breaker

import "time"

// States of a breaker.
const (
	Closed   = "closed"
	Open     = "open"
	HalfOpen = "half_open"
)

// buckets split the window, so it rolls in steps of a sixth.
const buckets = 6

// State is a breaker as stored in KV and listed by admins.
type State struct {
	ActionID   string `json:"action_id"`
	State      string `json:"state"`
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

// Counts returns the successes and failures in the window ending at now.
func (st *State) Counts(now time.Time, window time.Duration) (successes, failures int) {
	from := now.Add(-window).UnixMilli()
	for _, b := range st.Buckets {
		if b.StartMS > from-window.Milliseconds()/buckets {
			successes += b.Successes
			failures += b.Failures
		}
	}
	return successes, failures
}

// add adds outcomes to the bucket of now and drops buckets older than the
// window.
func (st *State) add(now time.Time, window time.Duration, successes, failures int) {
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
func (st *State) OpenUntil() time.Time {
	return time.UnixMilli(st.OpenedAtMS + st.CooldownMS)
}

// Transition is one state change, reported by the replica that made it.
type Transition struct {
	ActionID    string
	From, To    string
	Generation  uint64
	Successes   int
	Failures    int
	Consecutive int
	Cooldown    time.Duration
	Reason      string
}
