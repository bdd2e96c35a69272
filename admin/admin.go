package admin

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
	"customactions/breaker"
)

// Breakers is what the admin requests need of the breaker;
// *breaker.Breaker satisfies it.
type Breakers interface {
	List(ctx context.Context) ([]breaker.Status, error)
	Reset(ctx context.Context, actionID string) (breaker.Status, error)
}

// Service answers admin requests over the token store, the fetched-token
// manager and the breakers.
type Service struct {
	prefix   string
	store    *auth.Store
	mgr      *auth.Manager
	fetcher  *auth.Fetcher
	breakers Breakers
	log      *slog.Logger

	js        jetstream.JetStream // WithLogStream
	logStream string
	dead      *DeadLetters    // WithDeadLetters
	connector *auth.Connector // WithConnector
	// WithRecentTriggers
	recentJS     jetstream.JetStream
	recentStream string
	onDeleted    func(tokenID, endUserID string, d auth.ConnectionDeleted)
}

// New returns a Service for the installation of the subject prefix;
// breakers may be nil (the breaker requests then answer an error) and log
// nil (discard). The log stream (tokens.usage) and the dead letters
// (dead.*) are options.
func New(prefix string, store *auth.Store, mgr *auth.Manager, fetcher *auth.Fetcher, breakers Breakers, log *slog.Logger, opts ...Option) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Service{prefix: prefix, store: store, mgr: mgr, fetcher: fetcher, breakers: breakers, log: log}
	for _, o := range opts {
		o(a)
	}
	return a
}
