package embedded

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartCluster starts n JetStream servers on 127.0.0.1 routed into one
// cluster called name (n = 1: a single server, no cluster), their stores
// under dir, and waits up to 30 s until every one accepts clients and, for
// a cluster, JetStream is clustered, current and has a meta leader. It is
// for tests and measurement programs; the caller shuts the servers down.
func StartCluster(dir, name string, n int) ([]*server.Server, error) {
	var routes []*url.URL
	ports := make([]int, n)
	if n > 1 {
		for i := range ports {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			ports[i] = ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
			routes = append(routes, u)
		}
	}
	var nodes []*server.Server
	stop := func() {
		for _, s := range nodes {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	for i := range n {
		opts := &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i)), NoSigs: true, NoLog: true}
		if n > 1 {
			opts.Cluster = server.ClusterOpts{Name: name, Host: "127.0.0.1", Port: ports[i]}
			opts.Routes = routes
		}
		s, err := server.NewServer(opts)
		if err != nil {
			stop()
			return nil, err
		}
		go s.Start()
		nodes = append(nodes, s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ready, leader := true, n == 1
		for _, s := range nodes {
			if !s.ReadyForConnections(time.Second) || n > 1 && (!s.JetStreamIsClustered() || !s.JetStreamIsCurrent()) {
				ready = false
			}
			leader = leader || s.JetStreamIsLeader()
		}
		if ready && leader {
			return nodes, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return nil, fmt.Errorf("%d nats-servers: not ready with a JetStream meta leader within 30s", n)
}
