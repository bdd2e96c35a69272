// Package breaker is the circuit breaker of actions, shared by every
// replica of the consumer through a JetStream KV bucket (key = action id).
//
// A Breaker follows the bucket with a KV watch, so in the closed state the
// hot path (Allow, then done with the outcome) makes no KV round trip:
// outcomes are counted in memory and flushed in small batches by
// compare-and-set, where the counts of every replica add up and the trip
// rule is evaluated. Every state change is a compare-and-set on the key's
// revision and bumps a generation number, so an outcome counted under an
// older generation cannot flip a newer state. After the cool-down exactly
// one replica wins the compare-and-set that moves the breaker to half-open
// and owns the one probe; its outcome closes the breaker or opens it again
// with a doubled cool-down.
//
// Outcomes are typed (Success, Failure, Slow, Ignored) and one trip rule
// (Settings.readyToTrip over Counts) decides. The same bucket holds each
// action's pause asked for with Retry-After (throttle.go, keys
// "throttle.<action id>"), so every replica holds back together.
//
// When KV cannot be reached the breaker fails open: calls go through, and
// the error is reported to the OnError hook. The package does not log; the
// consumer turns transitions and pauses (the OnTransition and OnThrottle
// hooks) into log events.
package breaker
