package main

import (
	"context"
	"customactions/admin"
	"customactions/events"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"

	"customactions/auth"
	"customactions/breaker"
	"customactions/consumer"
	"customactions/internal/netguard"
	"customactions/internal/webui"
)

func runService(ctx context.Context, _ []string, getenv func(string) string, _, stderr io.Writer) error {
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		// A process that allocates ~28 KB per trigger over a small live
		// heap collects often; see PERFORMANCE.md.
		defer debug.SetGCPercent(debug.SetGCPercent(s.GCPercent))
	}
	log, err := newLogger(s.LogLevel, stderr)
	if err != nil {
		return err
	}
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile)
		if err != nil {
			return fmt.Errorf("ACTIONS_CPU_PROFILE: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("ACTIONS_CPU_PROFILE: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	tp, shutdownTracing, err := tracerProvider(ctx, getenv)
	if err != nil {
		return err
	}
	defer func() {
		// Flush the spans still batched.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	var opts []consumer.Option
	if tp != nil {
		opts = append(opts, consumer.WithTracerProvider(tp))
		log.Info("tracing on: spans are exported over OTLP/HTTP")
	}
	if err := serve(ctx, s, log, nil, opts...); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// app is the running service, for the demo and tests.
type app struct {
	conn  *conn
	svc   *consumer.Service
	store *auth.Store
	res   *consumer.Resources
	// httpAddr is where metrics and health are served ("" when off).
	httpAddr string
}

// serve runs the service until ctx ends. ready, if set, is called once it
// consumes. opts are added to the consumer's (its tracer provider).
func serve(ctx context.Context, s *settings, log *slog.Logger, ready func(*app), opts ...consumer.Option) error {
	cfg := s.consumerConfig()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	sealer, err := auth.NewSealer(s.EncryptionKey, s.OldKeys)
	if err != nil {
		return fmt.Errorf("ACTIONS_ENCRYPTION_KEY: %w", err)
	}
	if sealer == nil {
		log.Warn("ACTIONS_ENCRYPTION_KEY is not set: token secrets are stored unencrypted in the KV buckets")
	}
	c, err := connectService(ctx, s, log)
	if err != nil {
		return err
	}
	defer c.close()

	res, err := setupWithRetry(ctx, c, cfg, log)
	if err != nil {
		return err
	}
	policy := netguard.Policy{AllowPrivate: s.AllowPrivate, AllowHosts: s.AllowHosts}
	if s.AllowPrivate {
		log.Warn("ACTIONS_ALLOW_PRIVATE_NETWORKS is on: action and auth URLs may reach loopback and private addresses")
	}
	client := policy.Client(cfg.Workers)
	store := auth.NewStore(res.Tokens, sealer)
	fetcher := auth.NewFetcher(auth.WithHTTPClient(client))
	mgr := auth.NewManager(res.Fetched, fetcher, auth.WithSealer(sealer), auth.WithConnections(res.Connections, 0))

	pub := events.NewPublisher(c.js, events.NewSubjects(cfg.Prefix))
	br, err := breaker.New(res.Breakers, s.breakerSettings(),
		breaker.OnTransition(consumer.TransitionLog(pub, log, time.Now)),
		breaker.OnThrottle(consumer.ThrottleLog(pub, log, time.Now)),
		breaker.OnError(func(actionID string, err error) {
			log.Warn("breaker state unreachable, failing open", "action_id", actionID, "err", err)
		}))
	if err != nil {
		return err
	}
	if s.KeepTriggers < 0 {
		return fmt.Errorf("ACTIONS_KEEP_TRIGGERS is %d: give a number of bytes, or 0 to keep no copies", s.KeepTriggers)
	}
	if err := consumer.SetupRecent(ctx, c.js, cfg, s.KeepTriggers); err != nil {
		return err
	}
	if s.KeepTriggers > 0 {
		opts = append(opts, consumer.WithRecentTriggers())
	}
	reg := prometheus.NewRegistry()
	metrics := consumer.NewMetrics(reg)
	opts = append([]consumer.Option{consumer.WithLogger(log), consumer.WithHTTPClient(client),
		consumer.WithTokens(store, mgr), consumer.WithBreaker(br), consumer.WithMetrics(metrics)}, opts...)
	svc, err := consumer.New(c.js, res, cfg, opts...)
	if err != nil {
		return err
	}
	registerCollectors(reg, svc, br)
	admOpts := []admin.Option{admin.WithLogStream(c.js, cfg.LogStream), admin.WithDeadLetters(newDeadLetters(c.js, cfg)),
		admin.OnConnectionDeleted(func(tokenID, endUserID string, d auth.ConnectionDeleted) {
			details := map[string]any{"revoked": d.Revoked}
			if d.RevokeError != "" {
				details["revoke_error"] = d.RevokeError
			}
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := consumer.ConnectionDeletedLog(dctx, pub, time.Now, tokenID, endUserID, details); err != nil {
				log.Warn("publish connection_deleted", "token_id", tokenID, "err", err)
			}
		})}
	if s.KeepTriggers > 0 {
		admOpts = append(admOpts, admin.WithRecentTriggers(c.js, consumer.RecentStream(cfg.Prefix)))
	}
	var connector *auth.Connector
	if s.PublicURL != "" {
		if s.HTTPAddr == "" {
			return fmt.Errorf("ACTIONS_PUBLIC_URL is set but ACTIONS_HTTP_ADDR is empty: connect links and the OAuth callback are served by the HTTP server")
		}
		connector, err = auth.NewConnector(store, mgr, res.ConnectStates, auth.ConnectConfig{PublicURL: s.PublicURL, TTL: s.ConnectTTL})
		if err != nil {
			return fmt.Errorf("ACTIONS_PUBLIC_URL: %w", err)
		}
		connector.OnConnected(consumer.ConnectionLog(pub, log, time.Now))
		mgr.SetConnector(connector)
		admOpts = append(admOpts, admin.WithConnector(connector))
		log.Info("connect links enabled", "public_url", s.PublicURL, "redirect_uri", connector.RedirectURI())
	}
	adm := admin.New(cfg.Prefix, store, mgr, fetcher, br, log, admOpts...)
	if s.TokensFile != "" {
		if err := importTokens(ctx, s.TokensFile, adm, log); err != nil {
			return err
		}
	}
	var (
		ui  func(*http.ServeMux)
		web *webui.Server
	)
	if s.AdminPassword != "" {
		if s.HTTPAddr == "" {
			return fmt.Errorf("ACTIONS_ADMIN_PASSWORD is set but ACTIONS_HTTP_ADDR is empty: the web UI needs the HTTP server")
		}
		web, err = webui.New(webui.Config{Password: s.AdminPassword, Prefix: cfg.Prefix, LogStream: cfg.LogStream, ResultStream: cfg.ResultStream}, adm, c.js, log, webui.WithSessionStore(res.Breakers))
		if err != nil {
			return err
		}
		ui = web.Register
		log.Info("web admin UI enabled", "path", "/ui/")
	}
	if connector != nil {
		withUI := ui
		ui = func(mux *http.ServeMux) {
			if withUI != nil {
				withUI(mux)
			}
			webui.RegisterConnect(mux, connector, log)
		}
	}
	httpAddr := ""
	if s.HTTPAddr != "" {
		if httpAddr, err = startHTTP(ctx, s.HTTPAddr, reg, checkReady(c.nc, svc, res), log, ui, withPprof(s.Pprof, web)); err != nil {
			return fmt.Errorf("ACTIONS_HTTP_ADDR: %w", err)
		}
	}
	if err := br.Watch(ctx); err != nil {
		return err
	}
	defer br.Flush()
	adminSub, err := adm.Subscribe(c.nc)
	if err != nil {
		return err
	}
	defer func() { _ = adminSub.Drain() }()
	if ready != nil {
		go func() {
			select {
			case <-svc.Ready():
				ready(&app{conn: c, svc: svc, store: store, res: res, httpAddr: httpAddr})
			case <-ctx.Done():
			}
		}()
	}
	err = svc.Run(ctx)
	// Token refreshes still under way (proactive ones outlive their calls)
	// finish before the connection closes.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.ShutdownTimeout)
	defer cancel()
	if werr := mgr.Wait(wctx); werr != nil {
		log.Warn("token refreshes still under way at exit", "err", werr)
	}
	return err
}

// setupWithRetry creates the streams and buckets, retrying while the NATS
// cluster is not ready (no JetStream leader yet, for example).
func setupWithRetry(ctx context.Context, c *conn, cfg consumer.Config, log *slog.Logger) (*consumer.Resources, error) {
	var res *consumer.Resources
	b := backoff.NewExponentialBackOff()
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0 // until ctx ends
	err := backoff.RetryNotify(func() error {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		var err error
		res, err = consumer.Setup(sctx, c.js, cfg)
		return err
	}, backoff.WithContext(b, ctx), func(err error, d time.Duration) {
		log.Warn("JetStream setup failed, retrying", "err", err, "retry_in", d)
	})
	if err != nil {
		return nil, fmt.Errorf("set up streams and buckets: %w", err)
	}
	return res, nil
}

func (s *settings) breakerSettings() breaker.Settings {
	return breaker.Settings{Window: s.BreakerWindow, MinCalls: s.BreakerMinCalls, FailureRatio: s.BreakerRatio,
		Consecutive: s.BreakerConsecutive, Cooldown: s.BreakerCooldown, MaxCooldown: s.BreakerMaxCooldown}
}
