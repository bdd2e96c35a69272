// Package natstest starts real JetStream servers for tests: one embedded
// server per test, on a random port with its store in t.TempDir(), shut
// down in t.Cleanup.
package natstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
	return StartAt(t, dir, -1)
}

// Connect returns a connection and its JetStream context, closed in
// t.Cleanup.
func Connect(t testing.TB, s *Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return ConnectURL(t, s.ClientURL(), opts...)
}

// StartAt starts a JetStream server on 127.0.0.1:port with its store in
// dir, to restart a server where it was.
func StartAt(t testing.TB, dir string, port int) *Server {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{StoreDir: dir, Listen: fmt.Sprintf("127.0.0.1:%d", port), Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &Server{Server: srv, Dir: dir}
}

// StartCluster starts n JetStream servers on 127.0.0.1 routed into one
// cluster, and waits until the cluster has a JetStream meta leader; they
// are shut down in t.Cleanup.
func StartCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	nodes, err := embedded.StartCluster(t.TempDir(), "actions-test", n)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range nodes {
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
	}
	return nodes
}

// ClusterURLs is the comma-separated client URLs of nodes.
func ClusterURLs(nodes []*server.Server) string {
	var urls []string
	for _, s := range nodes {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// ConnectURL connects to urls (comma-separated), closed in t.Cleanup.
func ConnectURL(t testing.TB, urls string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls, opts...)
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

// ReadAll reads every message of stream on filter with an ordered consumer
// and decodes each as JSON into a T. Errors are returned, for callers that
// ride out a failing node.
func ReadAll[T any](js jetstream.JetStream, stream, filter string) ([]T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []T
	if info.State.Msgs == 0 {
		return out, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, err
	}
	for {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var v T
			if err := json.Unmarshal(m.Data(), &v); err != nil {
				return nil, fmt.Errorf("decode %s: %w", m.Subject(), err)
			}
			out = append(out, v)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			return out, nil
		}
	}
}

// StartWithConfig starts a JetStream server on a free 127.0.0.1 port,
// its store in t.TempDir(), with conf added to its configuration file
// (accounts, users, mappings), and returns its client URL. It is shut down
// in t.Cleanup.
func StartWithConfig(t testing.TB, conf string) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "server.conf")
	content := "listen: 127.0.0.1:-1\njetstream: {store_dir: \"" + filepath.Join(dir, "js") + "\"}\n" + conf
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

// TestPasswords replaces each $ACTIONS_<USER>_PASSWORD of an accounts
// file (deploy/nats/accounts.conf) by the quoted "pw-<user>", user in
// lower case.
func TestPasswords(accounts string) string {
	return passwordVar.ReplaceAllStringFunc(accounts, func(m string) string {
		return `"pw-` + strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(m, "$ACTIONS_"), "_PASSWORD")) + `"`
	})
}

var passwordVar = regexp.MustCompile(`\$ACTIONS_([A-Z]+)_PASSWORD`)
