package admin

import "github.com/nats-io/nats.go/jetstream"

// Option adds an optional dependency to a Service.
type Option func(*Service)

// WithLogStream lets tokens.usage read the log events of stream (the
// installation's "ACTIONS_LOGS"); without it tokens.usage answers an
// internal error.
func WithLogStream(js jetstream.JetStream, stream string) Option {
	return func(a *Service) { a.js, a.logStream = js, stream }
}

// WithDeadLetters serves the dead.* requests with d; without it they
// answer an internal error.
func WithDeadLetters(d *DeadLetters) Option { return func(a *Service) { a.dead = d } }
