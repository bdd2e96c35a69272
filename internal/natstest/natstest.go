// Package natstest starts real JetStream servers for tests: one embedded
// server per test, on a random port with its store in t.TempDir(), shut
// down in t.Cleanup.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/embedded"
)

// Server is a running test server.
type Server struct {
	*server.Server
	Dir string
}

// Start starts a JetStream server for t.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn starts a JetStream server with its store in dir (to restart a
// server on the same store).
func StartIn(t testing.TB, dir string) *Server {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{StoreDir: dir, Listen: "127.0.0.1:-1", Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &Server{Server: srv, Dir: dir}
}

// Connect returns a connection and its JetStream context, closed in
// t.Cleanup.
func Connect(t testing.TB, s *Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
