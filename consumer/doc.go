// Package consumer executes triggers. A Service takes triggers from the
// shared durable pull consumer of the triggers stream with a pool of
// workers, and runs each through the flow of the contract: validate, check
// the action's breaker, take a slot of the action's bulkhead (bulkhead.go:
// one action never holds more than its share of the workers; the rest wait
// parked, holding none), wait out a pause the action asked for with
// Retry-After (throttle.go), make the call signed by package auth
// (Authenticator, which refreshes a token and retries once on a 401),
// publish the result and the log events (package events), record the
// outcome in the breaker (package breaker: success, failure, slow, or
// ignored), and ack. Large responses take from a memory budget
// (budget.go); results are cut to fit a message.
//
// Every outcome maps to one JetStream acknowledgement: a trigger that got a
// result is acked; one that could not be finished because of an
// infrastructure fault (the result could not be published) is retried with
// NakWithDelay, and moved to the dead-letter stream once it exhausts
// MaxDeliver. Long calls are kept alive with InProgress, so AckWait never
// expires under a working call.
//
// Setup creates or updates the streams, the durable consumer and the KV
// buckets that the service and its tools share. The admin requests are
// answered by package admin; tokens are resolved, signed and refreshed by
// package auth (Authenticator), which keeps token kinds out of this
// package.
package consumer
