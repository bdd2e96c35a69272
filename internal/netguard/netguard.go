// Package netguard keeps action and auth requests away from the service's
// own network: it refuses to dial loopback, private, link-local (cloud
// metadata at 169.254.169.254 among them), unspecified and other special
// addresses. The check runs on the address actually dialled, after DNS
// resolution, so DNS rebinding does not get around it, and it runs again
// for every redirect.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrNotAllowed is wrapped by the error of a refused dial.
var ErrNotAllowed = errors.New("address not allowed")

// Policy says which destinations may be dialled.
type Policy struct {
	// AllowPrivate allows loopback, private and link-local addresses (the
	// demo and tests that call a local server).
	AllowPrivate bool
	// AllowHosts are host names (exact, or "*.example.com" for its
	// subdomains) that may be dialled even on private addresses.
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

// Blocked reports whether ip is an address the guard refuses.
func Blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() ||
		cgnat.Contains(ip) || benchmarking.Contains(ip) || !ip.IsValid()
}

var (
	cgnat        = netip.MustParsePrefix("100.64.0.0/10")
	benchmarking = netip.MustParsePrefix("198.18.0.0/15")
)

// DialContext returns a dial function that applies the policy.
func (p Policy) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := *d
	guarded.Control = func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrNotAllowed, address)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || Blocked(ip) {
			return fmt.Errorf("%w: %s is a loopback, private or link-local address", ErrNotAllowed, host)
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

// Transport returns an HTTP transport that applies the policy, keeps
// connections alive (up to maxIdlePerHost idle ones per host) and does not
// use a proxy from the environment.
func (p Policy) Transport(maxIdlePerHost int) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           p.DialContext(d),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0,
	}
}

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
