package netguard

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrNotAllowed is wrapped by the error of a refused address or dial.
var ErrNotAllowed = errors.New("address not allowed")

// Check returns nil when ip may be dialled, or an error wrapping
// ErrNotAllowed that names the range it is in. An IPv6 zone is ignored
// (fe80::1%eth0 is link-local); the zero Addr is refused.
func Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: an invalid address", ErrNotAllowed)
	}
	ip = ip.WithZone("")
	rw, ok := match(ip)
	if !ok || rw.reach == global && !rw.embedsIPv4 {
		return nil
	}
	if rw.reach == global && rw.embedsIPv4 {
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte(b[12:]))
		if err := Check(v4); err != nil {
			return fmt.Errorf("%w: %s is in %s and embeds %s, which is not public", ErrNotAllowed, ip, rw, v4)
		}
		return nil
	}
	return fmt.Errorf("%w: %s is in %s: only public addresses may be called, not loopback, private or link-local ones or other special ranges",
		ErrNotAllowed, ip, rw)
}

// Blocked reports whether Check refuses ip.
func Blocked(ip netip.Addr) bool { return Check(ip) != nil }

// match returns the most specific row of the table that contains ip.
func match(ip netip.Addr) (row, bool) {
	var best row
	found := false
	for _, rw := range table {
		if rw.prefix.Contains(ip) && (!found || rw.prefix.Bits() > best.prefix.Bits()) {
			best, found = rw, true
		}
	}
	return best, found
}
