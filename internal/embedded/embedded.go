// Package embedded starts the NATS server with JetStream inside the
// consumer process: the default when no NATS URL is configured, so a laptop
// runs the whole service with nothing installed but Go.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrAddrInUse is returned by Start when the client address is already in
// use (another server, or a second copy of the service).
var ErrAddrInUse = errors.New("already in use")

// startTimeout bounds the wait for a server that neither accepts clients
// nor reports a fatal error.
const startTimeout = 10 * time.Second

// Options of the embedded server.
type Options struct {
	StoreDir string // JetStream file store
	Listen   string // client address, host:port; port 0 or -1 picks a free one
	Name     string // server name (default "actions-embedded")
	// Mappings are subject mappings (from, to) of the server's account,
	// such as the trigger partitions' one.
	Mappings [][2]string
}

// Start starts the server and waits until it accepts clients. A server
// that cannot start (its address in use, its store unusable) is reported
// at once, not after a timeout: the server's first fatal error ends the
// wait. An address in use matches ErrAddrInUse.
func Start(o Options) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	name := o.Name
	if name == "" {
		name = "actions-embedded"
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	fatal := &fatalLogger{ch: make(chan string, 1)}
	srv.SetLogger(fatal, false, false)
	go srv.Start()
	deadline := time.Now().Add(startTimeout)
	for !srv.ReadyForConnections(20 * time.Millisecond) {
		select {
		case msg := <-fatal.ch:
			srv.Shutdown()
			if port > 0 {
				if err := checkFree(o.Listen); err != nil {
					return nil, err // the likely reason, said plainly
				}
			}
			return nil, fmt.Errorf("embedded nats-server on %s did not start: %s", o.Listen, msg)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return nil, fmt.Errorf("embedded nats-server on %s did not start within %s", o.Listen, startTimeout)
		}
	}
	for _, m := range o.Mappings {
		if err := srv.GlobalAccount().AddMapping(m[0], m[1]); err != nil {
			srv.Shutdown()
			return nil, fmt.Errorf("embedded nats-server: mapping %s to %s: %w", m[0], m[1], err)
		}
	}
	return srv, nil
}

// checkFree returns an error matching ErrAddrInUse when addr cannot be
// listened on because something listens there already.
func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("embedded nats-server: %s is %w: stop what listens there or choose another address", addr, ErrAddrInUse)
	}
	if err != nil {
		return fmt.Errorf("embedded nats-server: listen on %s: %w", addr, err)
	}
	return l.Close()
}

// fatalLogger keeps the server's first fatal error (it stops starting after
// one, and would otherwise leave Start waiting) and drops the rest of its
// log.
type fatalLogger struct{ ch chan string }

func (l *fatalLogger) Fatalf(format string, v ...any) {
	select {
	case l.ch <- fmt.Sprintf(format, v...):
	default:
	}
}
func (*fatalLogger) Noticef(string, ...any) {}
func (*fatalLogger) Warnf(string, ...any)   {}
func (*fatalLogger) Errorf(string, ...any)  {}
func (*fatalLogger) Debugf(string, ...any)  {}
func (*fatalLogger) Tracef(string, ...any)  {}
