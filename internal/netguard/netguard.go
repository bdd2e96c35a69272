package netguard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Policy says which destinations may be dialled.
type Policy struct {
	// AllowPrivate turns the guard off: any address may be dialled,
	// loopback, private and link-local ones included (the demo, and tests
	// that call a local server).
	AllowPrivate bool
	// AllowHosts are host names (exact, or "*.example.com" for its
	// subdomains) that may be dialled whatever addresses they resolve to.
	// A redirect to another host is checked against that host.
	AllowHosts []string
}

func (p Policy) hostAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range p.AllowHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

// DialContext returns a dial function that applies the policy: unless the
// policy opens it, every address it connects to, after DNS resolution, must
// pass Check.
func (p Policy) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := *d
	// ControlContext takes precedence over Control: run the check there,
	// then whichever hook d had.
	guarded.Control = nil
	guarded.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := control(network, address, c); err != nil {
			return err
		}
		switch {
		case d.ControlContext != nil:
			return d.ControlContext(ctx, network, address, c)
		case d.Control != nil:
			return d.Control(network, address, c)
		}
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		if p.AllowPrivate || p.hostAllowed(host) {
			return d.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
}

// HTTP/2 health checks: a connection that has received no frame for
// HTTP2PingAfter is pinged, and closed if the ping is not answered within
// HTTP2PingTimeout. An HTTP/2 connection carries up to a few hundred calls
// at once; without the check, a connection that died silently (a NAT or
// load balancer dropped it) would hold every call on it until each one's
// timeout, and take new ones until TCP gave up on its retransmissions
// (about 15 minutes on Linux).
const (
	HTTP2PingAfter   = 15 * time.Second
	HTTP2PingTimeout = 10 * time.Second
)

// TLSSessions is how many servers' TLS sessions a transport keeps for
// resumption.
const TLSSessions = 1024

// Transport returns an HTTP transport that applies the policy, keeps
// connections alive (up to maxIdlePerHost idle ones per host), speaks
// HTTP/2 to servers that offer it over TLS, with health checks, resumes
// TLS sessions, and does not use a proxy from the environment.
//
// Resumption matters for APIs that speak only HTTP/1.1 over TLS: every
// call in flight has its own connection, and servers close keep-alive
// connections after a while or a number of requests. A resumed handshake
// skips the certificate chain's verification on this side and the
// signature on the server's.
func (p Policy) Transport(maxIdlePerHost int) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           p.DialContext(d),
		TLSClientConfig:       &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(TLSSessions)},
		ForceAttemptHTTP2:     true,
		HTTP2:                 &http.HTTP2Config{SendPingTimeout: HTTP2PingAfter, PingTimeout: HTTP2PingTimeout},
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0,
		// Response headers are capped (net/http's default is 10 MiB): a
		// call whose answer has more fails with a clear error instead of
		// filling memory and a result.
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
	}
}

// MaxResponseHeaderBytes caps the response headers of action and auth
// requests.
const MaxResponseHeaderBytes = 64 << 10

// Client returns an HTTP client over the policy's transport that follows at
// most 5 redirects (each dialled through the guard).
func (p Policy) Client(maxIdlePerHost int) *http.Client {
	return &http.Client{
		Transport: p.Transport(maxIdlePerHost),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}
}

// control is the dialer's Control hook: it sees the resolved address just
// before the socket connects, and refuses it unless Check allows it.
func control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNotAllowed, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %s is not an IP address", ErrNotAllowed, host)
	}
	return Check(ip)
}
