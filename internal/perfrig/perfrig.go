// Package perfrig starts what the load programs in perf/ measure, in one
// process: a JetStream nats-server on loopback and consumers over it, each
// on its own connection as replicas are. Errors end the program: these are
// measurement tools.
package perfrig

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/auth"
	"customactions/breaker"
	"customactions/consumer"
	"customactions/events"
	"customactions/internal/netguard"
)

// Server starts a JetStream nats-server on 127.0.0.1 with its store in a
// temporary directory; maxPayload 0 keeps the server's default (1 MB).
// stop shuts it down and removes the store.
func Server(maxPayload int32) (ns *server.Server, stop func()) {
	dir, err := os.MkdirTemp("", "perfrig")
	if err != nil {
		log.Fatal(err)
	}
	ns, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
		MaxPayload: maxPayload})
	if err != nil {
		log.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server did not start")
	}
	return ns, func() { ns.Shutdown(); _ = os.RemoveAll(dir) }
}

// Connect connects to url with JetStream.
func Connect(url string) (*nats.Conn, jetstream.JetStream) {
	nc, err := nats.Connect(url)
	if err != nil {
		log.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	return nc, js
}

// Replica runs a consumer named name over its own connection to url until
// ctx ends, and returns once it consumes. cfg gets its defaults; with
// settings, the replica has the shared breaker (its transitions and pauses
// published as log events), which is returned, else nil.
func Replica(ctx context.Context, url, name string, cfg consumer.Config, settings *breaker.Settings) (*consumer.Service, *breaker.Breaker) {
	cfg = cfg.WithDefaults()
	_, js := Connect(url)
	res, err := consumer.Setup(ctx, js, cfg)
	if err != nil {
		log.Fatal(err)
	}
	opts := []consumer.Option{consumer.WithHTTPClient(netguard.Policy{AllowPrivate: true}.Client(cfg.Workers)),
		consumer.WithTokens(auth.NewStore(res.Tokens, nil), auth.NewManager(res.Fetched, auth.NewFetcher(), auth.WithConnections(res.Connections, 0)))}
	var br *breaker.Breaker
	if settings != nil {
		pub := events.NewPublisher(js, events.NewSubjects(cfg.Prefix))
		quiet := slog.New(slog.DiscardHandler)
		br, err = breaker.New(res.Breakers, *settings, breaker.WithHolder(name),
			breaker.OnTransition(consumer.TransitionLog(pub, quiet, time.Now)), breaker.OnThrottle(consumer.ThrottleLog(pub, quiet, time.Now)))
		if err != nil {
			log.Fatal(err)
		}
		if err := br.Watch(ctx); err != nil {
			log.Fatal(err)
		}
		opts = append(opts, consumer.WithBreaker(br))
	}
	svc, err := consumer.New(js, res, cfg, opts...)
	if err != nil {
		log.Fatal(fmt.Errorf("replica %s: %w", name, err))
	}
	go func() { _ = svc.Run(ctx) }()
	<-svc.Ready()
	return svc, br
}
