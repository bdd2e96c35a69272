// Package netguard keeps action and auth requests away from the service's
// own network. It refuses to dial any address that the IANA IPv4 and IPv6
// Special-Purpose Address Registries do not mark "globally reachable"
// (loopback, private, link-local with the cloud metadata service,
// shared/CGNAT, documentation, benchmarking, reserved, broadcast, ...),
// multicast, IPv6 outside global unicast 2000::/3, and the IPv6 forms that
// embed an IPv4 address (mapped, compatible, 6to4, Teredo; NAT64 only when
// the embedded address is itself refused). The table is in registry.go.
//
// The check runs on the address actually dialled, after DNS resolution (the
// dialer's Control hook), so DNS rebinding does not get around it, and it
// runs again for every redirect, since each one is a new dial. A Policy can
// open it for development (AllowPrivate) or for named hosts (AllowHosts).
package netguard
