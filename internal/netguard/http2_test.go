package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blackholeProxy forwards loopback TCP connections to target until
// silence is called: from then on, the connections open at that moment
// stay open and swallow what they are sent in both directions, as a
// connection dropped by a NAT does. Connections opened later forward.
type blackholeProxy struct {
	ln     net.Listener
	target string
	opened atomic.Int64
	mu     sync.Mutex
	quiet  []*atomic.Bool
}

func newBlackholeProxy(t *testing.T, target string) *blackholeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackholeProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go p.serve(t)
	return p
}

func (p *blackholeProxy) serve(t *testing.T) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		t.Cleanup(func() { c.Close(); up.Close() })
		p.opened.Add(1)
		quiet := new(atomic.Bool)
		p.mu.Lock()
		p.quiet = append(p.quiet, quiet)
		p.mu.Unlock()
		go pipe(up, c, quiet)
		go pipe(c, up, quiet)
	}
}

func pipe(dst io.Writer, src io.Reader, quiet *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !quiet.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *blackholeProxy) silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, q := range p.quiet {
		q.Store(true)
	}
}

// TestHTTP2DeadConnectionIsDropped: calls share one HTTP/2 connection;
// when it dies silently, the health check closes it, the call on it fails
// with a connection error rather than waiting out its own deadline, and
// the next call dials a new connection and succeeds.
func TestHTTP2DeadConnectionIsDropped(t *testing.T) {
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	api.EnableHTTP2 = true
	api.StartTLS()
	t.Cleanup(api.Close)
	proxy := newBlackholeProxy(t, api.Listener.Addr().String())
	url := "https://" + proxy.ln.Addr().String() + "/"

	tr := trustingTransport(t, api)
	if tr.HTTP2 == nil || tr.HTTP2.SendPingTimeout <= 0 || tr.HTTP2.PingTimeout <= 0 {
		t.Fatalf("the transport has no HTTP/2 health check: %+v", tr.HTTP2)
	}
	// The same check, quicker, so that the test does not wait 25 s. The
	// ping has a second to come back, so that a slow warm-up call on a
	// busy machine does not close the live connection.
	tr.HTTP2.SendPingTimeout, tr.HTTP2.PingTimeout = 200*time.Millisecond, time.Second
	client := &http.Client{Transport: tr}

	get := func(ctx context.Context) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	for range 3 {
		if proto, err := get(t.Context()); err != nil || proto != "HTTP/2.0" {
			t.Fatalf("call: %q, %v; want HTTP/2.0", proto, err)
		}
	}
	if n := proxy.opened.Load(); n != 1 {
		t.Fatalf("%d connections for 3 calls, want 1", n)
	}

	proxy.silence()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := get(ctx)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call on the dead connection: %v; want the connection closed by the health check", err)
	}
	if proto, err := get(t.Context()); err != nil || proto != "HTTP/2.0" {
		t.Fatalf("call after the dead connection: %q, %v", proto, err)
	}
	if n := proxy.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (a new one after the dead one)", n)
	}
}
