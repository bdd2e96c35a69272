package netguard

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestBlocked(t *testing.T) {
	for _, tc := range []struct {
		ip      string
		blocked bool
	}{
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true}, {"10.1.2.3", true}, {"172.16.0.1", true},
		{"192.168.1.1", true}, {"169.254.169.254", true}, {"fe80::1", true}, {"0.0.0.0", true}, {"::", true},
		{"fc00::1", true}, {"100.64.0.1", true}, {"::ffff:127.0.0.1", true}, {"224.0.0.1", true},
		{"8.8.8.8", false}, {"1.1.1.1", false}, {"2606:4700::1111", false}, {"172.32.0.1", false},
	} {
		if got := Blocked(netip.MustParseAddr(tc.ip)); got != tc.blocked {
			t.Errorf("Blocked(%s) = %v, want %v", tc.ip, got, tc.blocked)
		}
	}
}

func TestGuardChecksTheDialledAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	for _, u := range []string{
		srv.URL,                             // loopback by address
		"http://localhost:" + port,          // a name that resolves to loopback
		"http://[::ffff:127.0.0.1]:" + port, // IPv4-mapped
	} {
		_, err := Policy{}.Client(1).Get(u)
		if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("GET %s: err = %v, want ErrNotAllowed", u, err)
		}
	}
	if _, err := (Policy{AllowPrivate: true}).Client(1).Get(srv.URL); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
	if _, err := (Policy{AllowHosts: []string{"localhost"}}).Client(1).Get("http://localhost:" + port); err != nil {
		t.Errorf("allowed host: %v", err)
	}
}

func TestRedirectsAreChecked(t *testing.T) {
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the internal server was reached through a redirect")
	}))
	defer internal.Close()
	// An allowed host that redirects to an address that is not allowed.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/admin", http.StatusFound)
	}))
	defer front.Close()
	port := front.URL[strings.LastIndex(front.URL, ":")+1:]
	_, err := Policy{AllowHosts: []string{"localhost"}}.Client(1).Get(fmt.Sprintf("http://localhost:%s/", port))
	if !errors.Is(err, ErrNotAllowed) {
		t.Errorf("redirect to a private address: err = %v, want ErrNotAllowed", err)
	}
}
