package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// mostSpecific is the row of the table with the longest prefix that
// contains ip, found without match so that the test does not trust it.
func mostSpecific(ip netip.Addr) (row, bool) {
	var best row
	found := false
	for _, rw := range table {
		if rw.prefix.Contains(ip) && (!found || rw.prefix.Bits() > best.prefix.Bits()) {
			best, found = rw, true
		}
	}
	return best, found
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestEveryRow checks, for each row of the registries' table, an address
// for which that row is the most specific one: it is refused unless the row
// is globally reachable (and, for NAT64, unless what it embeds is allowed).
func TestEveryRow(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	for _, rw := range table {
		if seen[rw.prefix] {
			t.Errorf("%s is in the table twice", rw.prefix)
		}
		seen[rw.prefix] = true
		if rw.prefix != rw.prefix.Masked() {
			t.Errorf("%s is not a network address", rw.prefix)
		}
		t.Run(rw.prefix.String(), func(t *testing.T) {
			tested := 0
			for _, ip := range []netip.Addr{rw.prefix.Addr(), lastAddr(rw.prefix), rw.prefix.Addr().Next(), lastAddr(rw.prefix).Prev()} {
				if best, _ := mostSpecific(ip); best.prefix != rw.prefix {
					continue // a more specific row decides this one
				}
				tested++
				want := rw.reach != global
				if rw.embedsIPv4 {
					b := ip.As16()
					want = Blocked(netip.AddrFrom4([4]byte(b[12:])))
				}
				err := Check(ip)
				if got := err != nil; got != want {
					t.Errorf("Check(%s) = %v, want refused %v (%s, %s)", ip, err, want, rw.name, rw.rfc)
				}
				if err != nil && !errors.Is(err, ErrNotAllowed) {
					t.Errorf("Check(%s) = %v, does not wrap ErrNotAllowed", ip, err)
				}
			}
			if tested == 0 {
				t.Errorf("no address of %s is decided by its own row", rw.prefix)
			}
		})
	}
}

// TestRefusedAndAllowed lists the reported cases and their variants.
func TestRefusedAndAllowed(t *testing.T) {
	refused := []string{
		// IPv4 special purpose.
		"0.0.0.0", "0.1.2.3", "10.1.2.3", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.8.9.10",
		"169.254.169.254", "169.254.170.2", "172.16.0.1", "172.31.255.255", "192.0.0.1", "192.0.0.8", "192.0.0.170",
		"192.0.2.1", "192.88.99.1", "192.88.99.2", "192.168.1.1", "198.18.0.1", "198.19.255.255",
		"198.51.100.7", "203.0.113.9", "240.0.0.1", "250.1.2.3", "255.255.255.254", "255.255.255.255",
		// Multicast.
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff0e::1", "ff05::1:3",
		// Cloud metadata.
		"168.63.129.16", "100.100.100.200", "fd00:ec2::254",
		// IPv6 special purpose.
		"::", "::1", "fe80::1", "fe80::1%eth0", "febf::1", "fec0::1", "fc00::1", "fd12:3456::1",
		"100::1", "100:0:0:1::1", "2001:2::1", "2001:db8::1", "3fff::1", "5f00::1", "2001:10::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
		// IPv6 outside global unicast.
		"4000::1", "8000::1", "e000::1", "fe00::1", "1::1", "200::1",
		// IPv4 embedded in IPv6.
		"::ffff:127.0.0.1", "::ffff:8.8.8.8", "::127.0.0.1", "::8.8.8.8", "::ffff:0:127.0.0.1", "::ffff:0:8.8.8.8",
		"64:ff9b::127.0.0.1", "64:ff9b::10.0.0.1", "64:ff9b::169.254.169.254", "64:ff9b::0.0.0.0", "64:ff9b::100.64.0.1",
		"64:ff9b::255.255.255.255", "64:ff9b:1::1", "64:ff9b:1:7f00:1::", "64:ff9b:1::8.8.8.8",
		"2002:7f00:1::1", "2002:a9fe:a9fe::1", "2002:808:808::1",
	}
	allowed := []string{
		"8.8.8.8", "1.1.1.1", "9.9.9.9", "172.32.0.1", "100.128.0.1", "192.0.3.1", "11.0.0.1", "223.255.255.254",
		"192.0.0.9", "192.0.0.10", "192.31.196.1", "192.52.193.1", "192.175.48.6",
		"2606:4700::1", "2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001::1", "3ffe::1",
		"64:ff9b::8.8.8.8", "64:ff9b::1.1.1.1",
		"2001:1::1", "2001:3::1", "2001:4:112::1", "2001:20::1", "2620:4f:8000::1",
	}
	for _, s := range refused {
		if err := Check(netip.MustParseAddr(s)); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("Check(%s) = %v, want ErrNotAllowed", s, err)
		}
	}
	for _, s := range allowed {
		if err := Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("Check(%s) = %v, want allowed", s, err)
		}
	}
	if !Blocked(netip.Addr{}) {
		t.Error("the zero Addr is allowed")
	}
}

// TestControlRefusesTheDialledAddress calls the dial hook directly with the
// resolved addresses it would see: nothing is sent anywhere.
func TestControlRefusesTheDialledAddress(t *testing.T) {
	for _, tc := range []struct {
		network, address string
		refused          bool
	}{
		{"tcp4", "169.254.169.254:80", true},
		{"tcp4", "0.0.0.0:80", true},
		{"tcp4", "240.0.0.1:443", true},
		{"tcp6", "[::1]:80", true},
		{"tcp6", "[fe80::1%lo]:80", true},
		{"tcp6", "[64:ff9b::a9fe:a9fe]:80", true},
		{"tcp6", "[2002:7f00:1::1]:80", true},
		{"tcp6", "[::127.0.0.1]:80", true},
		{"tcp4", "not-an-address:80", true},
		{"tcp4", "no-port", true},
		{"tcp4", "8.8.8.8:443", false},
		{"tcp6", "[2606:4700::1]:443", false},
		{"tcp6", "[64:ff9b::808:808]:443", false},
	} {
		err := control(tc.network, tc.address, nil)
		if got := errors.Is(err, ErrNotAllowed); got != tc.refused {
			t.Errorf("control(%s, %s) = %v, want refused %v", tc.network, tc.address, err, tc.refused)
		}
	}
}

// TestGuardKeepsTheCallersControlContext: a dialer that brings its own
// ControlContext (which Go runs instead of Control) is still guarded, and its
// hook still runs for allowed addresses.
func TestGuardKeepsTheCallersControlContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	called := 0
	d := &net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error { called++; return nil }}
	if c, err := (Policy{}).DialContext(d)(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, ErrNotAllowed) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s with the caller's ControlContext: err = %v, want ErrNotAllowed", ln.Addr(), err)
	}
	if called != 0 {
		t.Errorf("the caller's hook ran for a refused address")
	}
	c, err := (Policy{AllowPrivate: true}).DialContext(d)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if called != 1 {
		t.Errorf("the caller's hook ran %d times, want 1", called)
	}
}

// FuzzCheck holds the table to the standard library and to the embeddings:
// whatever net/netip calls loopback, private, link-local, multicast,
// unspecified or not global unicast is refused, and an IPv4 address that is
// refused stays refused in every IPv6 form that embeds it.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "8.8.8.8", "169.254.169.254", "10.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "fe80::1", "2606:4700::1", "64:ff9b::7f00:1", "ff02::1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		special := ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
			ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsGlobalUnicast()
		if special && !Blocked(ip) {
			t.Fatalf("%s is special to net/netip but allowed", ip)
		}
		if !ip.Is4() || !Blocked(ip) {
			return
		}
		v4 := ip.As4()
		for _, form := range []string{
			"::ffff:%d.%d.%d.%d", "::%d.%d.%d.%d", "::ffff:0:%d.%d.%d.%d", "64:ff9b::%d.%d.%d.%d", "64:ff9b:1::%d.%d.%d.%d",
		} {
			e := netip.MustParseAddr(fmt.Sprintf(form, v4[0], v4[1], v4[2], v4[3]))
			if !Blocked(e) {
				t.Fatalf("%s embeds refused %s but is allowed", e, ip)
			}
		}
		sixToFour := netip.AddrFrom16([16]byte{0x20, 0x02, v4[0], v4[1], v4[2], v4[3], 15: 1})
		if !Blocked(sixToFour) {
			t.Fatalf("6to4 %s embeds refused %s but is allowed", sixToFour, ip)
		}
	})
}
