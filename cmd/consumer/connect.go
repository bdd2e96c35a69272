package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/events"
	"customactions/internal/embedded"
)

// conn is a NATS connection with JetStream, and the embedded server when
// there is one.
type conn struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	srv *server.Server
	// errs receives the connection's asynchronous errors (a permissions
	// violation, for one), so a tool can fail at once instead of timing out.
	errs chan error
}

// close drains the connection (flushing the last acks) and stops the
// embedded server.
func (c *conn) close() {
	if c.nc != nil {
		_ = c.nc.Drain()
		deadline := time.Now().Add(10 * time.Second)
		for !c.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
}

// natsOptions are the connection options of the settings: reconnect
// forever, and the auth options that are set.
func (s *settings) natsOptions(name string, log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: a clean close
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("NATS error", "err", err) }),
	}
	if s.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(s.NATSCreds))
	}
	if s.NATSNKey != "" {
		o, err := nats.NkeyOptionFromSeed(s.NATSNKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	}
	if s.NATSUser != "" {
		opts = append(opts, nats.UserInfo(s.NATSUser, s.NATSPassword))
	}
	if s.NATSCA != "" {
		opts = append(opts, nats.RootCAs(s.NATSCA))
	}
	if s.NATSCert != "" || s.NATSKey != "" {
		opts = append(opts, nats.ClientCert(s.NATSCert, s.NATSKey))
	}
	return opts, nil
}

// connectService connects the service: to NATS_URL, or to an embedded
// server it starts (in-process connection, client port on
// ACTIONS_NATS_LISTEN for producers and tools).
func connectService(ctx context.Context, s *settings, log *slog.Logger) (*conn, error) {
	opts, err := s.natsOptions("actions-consumer", log)
	if err != nil {
		return nil, err
	}
	c := &conn{}
	url := s.NATSURL
	if url == "" {
		dir, err := filepath.Abs(s.DataDir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		eo := embedded.Options{StoreDir: dir, Listen: s.Listen}
		if s.Partitions > 1 {
			from, to := events.NewSubjects(s.Prefix).PartitionMapping(s.Partitions)
			eo.Mappings = [][2]string{{from, to}}
		}
		c.srv, err = embedded.Start(eo)
		if errors.Is(err, embedded.ErrAddrInUse) {
			return nil, fmt.Errorf("ACTIONS_NATS_LISTEN: %w", err)
		}
		if err != nil {
			return nil, err
		}
		log.Info("embedded NATS server started", "url", c.srv.ClientURL(), "store_dir", dir)
		opts = append(opts, nats.InProcessServer(c.srv))
		url = c.srv.ClientURL()
	}
	if c.srv != nil {
		c.nc, err = nats.Connect(url, opts...) // in-process: no network to wait for
	} else {
		c.nc, err = connectRetry(ctx, url, opts, log)
	}
	if err != nil {
		c.close()
		if c.srv != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", redactURLs(url), err)
		}
		return nil, err
	}
	c.js, err = jetstream.New(c.nc)
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// connectRetry connects to url, retrying with exponential backoff (up to
// 10 s apart) while no server answers, until ctx ends: a service started
// before its NATS cluster waits for it. Each wait is logged with the URL,
// the attempt and the delay. Errors a retry cannot fix (credentials
// refused, a missing file, TLS required on one side only) end it at once.
func connectRetry(ctx context.Context, url string, opts []nats.Option, log *slog.Logger) (*nats.Conn, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 250 * time.Millisecond
	b.MaxInterval = 10 * time.Second
	b.MaxElapsedTime = 0 // until ctx ends
	shown := redactURLs(url)
	attempt := 0
	var nc *nats.Conn
	var last error
	err := backoff.RetryNotify(func() error {
		attempt++
		var err error
		nc, err = nats.Connect(url, opts...)
		if err != nil {
			last = err
			if permanentConnectError(err) {
				return backoff.Permanent(err)
			}
		}
		return err
	}, backoff.WithContext(b, ctx), func(err error, next time.Duration) {
		log.Warn("waiting for NATS", "url", shown, "attempt", attempt, "retry_in", next.Round(time.Millisecond).String(), "err", err)
	})
	if err != nil {
		if ctx.Err() != nil && last != nil {
			return nil, fmt.Errorf("connect to NATS at %s: gave up after %d attempts (%w); last error: %v", shown, attempt, ctx.Err(), last)
		}
		return nil, fmt.Errorf("connect to NATS at %s: %w", shown, err)
	}
	if attempt > 1 {
		log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted(), "attempt", attempt)
	}
	return nc, nil
}

// permanentConnectError reports whether a retry of the connect cannot
// succeed without an operator's change.
func permanentConnectError(err error) bool {
	for _, p := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired,
		nats.ErrSecureConnRequired, nats.ErrSecureConnWanted, nats.ErrNkeysNotSupported, fs.ErrNotExist, fs.ErrPermission} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// connectClient connects a tool (trigger, logs, tokens, breakers) to
// NATS_URL or, when it is empty, to the embedded server's address.
func connectClient(s *settings) (*conn, error) {
	opts, err := s.natsOptions("actions-cli", slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	url := s.NATSURL
	if url == "" {
		url = "nats://" + s.Listen
	}
	errs := make(chan error, 8)
	opts = append(opts, nats.MaxReconnects(0), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s (is the service running?): %w", redactURLs(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &conn{nc: nc, js: js, errs: errs}, nil
}

// redactURLs hides passwords in a comma-separated list of URLs.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "****" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("ACTIONS_LOG_LEVEL %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
