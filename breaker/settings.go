package breaker

import (
	"errors"
	"fmt"
	"time"
)

// Settings of the trip rule and the cool-down. A zero field takes the
// default written beside it.
type Settings struct {
	Window       time.Duration // 60 s rolling window of the failure ratio
	MinCalls     int           // 10 live calls in the window before the ratio can trip
	FailureRatio float64       // 0.5
	Consecutive  int           // 5 consecutive failures trip at once
	Cooldown     time.Duration // 30 s before the first probe; doubles after each failed probe
	MaxCooldown  time.Duration // 10 min cap of the cool-down
	// FlushInterval is how long failures wait in memory before they are
	// added to the shared counts (100 ms); successes alone wait up to ten
	// times as long.
	FlushInterval time.Duration
	// ProbeTimeout is how long a probe may run before another replica may
	// take over the probe slot (2 min; more than a trigger's budget).
	ProbeTimeout time.Duration
}

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings {
	if s.Window <= 0 {
		s.Window = time.Minute
	}
	if s.MinCalls <= 0 {
		s.MinCalls = 10
	}
	if s.FailureRatio <= 0 {
		s.FailureRatio = 0.5
	}
	if s.Consecutive <= 0 {
		s.Consecutive = 5
	}
	if s.Cooldown <= 0 {
		s.Cooldown = 30 * time.Second
	}
	if s.MaxCooldown <= 0 {
		s.MaxCooldown = 10 * time.Minute
	}
	if s.FlushInterval <= 0 {
		s.FlushInterval = 100 * time.Millisecond
	}
	if s.ProbeTimeout <= 0 {
		s.ProbeTimeout = 2 * time.Minute
	}
	return s
}

// Validate reports settings that cannot work.
func (s Settings) Validate() error {
	var errs []error
	if s.FailureRatio > 1 {
		errs = append(errs, fmt.Errorf("failure ratio %.2f is more than 1", s.FailureRatio))
	}
	if s.MaxCooldown < s.Cooldown {
		errs = append(errs, fmt.Errorf("max cool-down %s is less than the cool-down %s", s.MaxCooldown, s.Cooldown))
	}
	if s.Window < 6*time.Millisecond {
		errs = append(errs, errors.New("window is too short"))
	}
	return errors.Join(errs...)
}

// Counts are what the trip rule looks at: the outcomes in the rolling
// window, summed over replicas, and the run of consecutive failures.
type Counts struct {
	Successes   int
	Failures    int
	Consecutive int
}

// readyToTrip is the one trip rule: Consecutive failures in a row, or at
// least MinCalls calls in the window of which FailureRatio or more failed.
// It says why the breaker opens.
func (s Settings) readyToTrip(c Counts) (reason string, trip bool) {
	total := c.Successes + c.Failures
	switch {
	case c.Consecutive >= s.Consecutive:
		return fmt.Sprintf("%d consecutive failures", c.Consecutive), true
	case total >= s.MinCalls && float64(c.Failures)/float64(total) >= s.FailureRatio:
		return fmt.Sprintf("%d of %d calls failed in the last %s", c.Failures, total, s.Window), true
	}
	return "", false
}
