package netguard

import "net/netip"

// reach is the "Globally Reachable" column of the IANA special-purpose
// registries.
type reach uint8

const (
	notGlobal reach = iota // False: never dialled
	global                 // True: dialled
	// notApplicable is "N/A" or empty (Teredo, 6to4, terminated blocks):
	// the registry makes no promise, so the guard refuses.
	notApplicable
)

// row is one range of the table. The most specific row that contains an
// address decides (the registries' footnotes: "Not useable unless by
// virtue of a more specific reservation", "Unless allowed by a more
// specific allocation").
type row struct {
	prefix netip.Prefix
	name   string
	rfc    string
	reach  reach
	// embedsIPv4: an address of this row carries an IPv4 address in its
	// last 32 bits and is allowed only when that address is (NAT64).
	embedsIPv4 bool
}

// String names the row in errors: "127.0.0.0/8 (Loopback, RFC 1122, ...)".
func (rw row) String() string {
	if rw.rfc == "" {
		return rw.prefix.String() + " (" + rw.name + ")"
	}
	return rw.prefix.String() + " (" + rw.name + ", " + rw.rfc + ")"
}

func r(prefix, name, rfc string, g reach) row {
	return row{prefix: netip.MustParsePrefix(prefix), name: name, rfc: rfc, reach: g}
}

// table is every row of
//
//   - the IANA IPv4 Special-Purpose Address Registry
//     (https://www.iana.org/assignments/iana-ipv4-special-registry/, 25
//     records, as of its 2025 revision),
//   - the IANA IPv6 Special-Purpose Address Registry
//     (https://www.iana.org/assignments/iana-ipv6-special-registry/, 25
//     records, updated 2025-10-09),
//
// with "Globally Reachable" as the registry gives it, followed by rows that
// those registries leave out and that an action must not reach either:
// multicast (IPv4 and IPv6 Multicast Address Space registries), every block
// of the IANA IPv6 Address Space registry outside 2000::/3 (reserved by the
// IETF, site-local, ...), the deprecated IPv4-compatible and SIIT forms
// that embed an IPv4 address, and cloud metadata addresses that the
// registries do not cover (Azure's WireServer is a public address).
//
// An address in no row is an ordinary public IPv4 address and is allowed.
// Every IPv6 address is in some row: 2000::/3 is the global unicast row.
//
// Decisions on rows that embed an IPv4 address:
//   - ::ffff:0:0/96 (IPv4-mapped) is refused whatever it embeds, as the
//     registry says. Go dials a mapped address as its IPv4 address, so the
//     dial hook sees (and classifies) the plain IPv4 form anyway.
//   - 64:ff9b::/96 (NAT64 well-known prefix) is globally reachable: an
//     IPv6-only host reaches public IPv4 APIs through it. It is allowed only
//     when its embedded IPv4 address is allowed, so 64:ff9b::7f00:1
//     (127.0.0.1) or 64:ff9b::a9fe:a9fe (169.254.169.254) are refused.
//   - 64:ff9b:1::/48 (local-use NAT64), 2002::/16 (6to4) and 2001::/32
//     (Teredo) are refused whole: not globally reachable or N/A in the
//     registry, with embeddings that vary or are obfuscated.
//   - ::/96 (IPv4-compatible, deprecated) and ::ffff:0:0:0/96 (SIIT) are
//     refused whole.
var table = []row{
	// IANA IPv4 Special-Purpose Address Registry.
	r("0.0.0.0/8", `"This network"`, "RFC 791, Section 3.2", notGlobal),
	r("0.0.0.0/32", `"This host on this network"`, "RFC 1122, Section 3.2.1.3", notGlobal),
	r("10.0.0.0/8", "Private-Use", "RFC 1918", notGlobal),
	r("100.64.0.0/10", "Shared Address Space", "RFC 6598", notGlobal),
	r("127.0.0.0/8", "Loopback", "RFC 1122, Section 3.2.1.3", notGlobal),
	r("169.254.0.0/16", "Link Local", "RFC 3927", notGlobal),
	r("172.16.0.0/12", "Private-Use", "RFC 1918", notGlobal),
	r("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890, Section 2.1", notGlobal),
	r("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", notGlobal),
	r("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", notGlobal),
	r("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", global),
	r("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", global),
	r("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 Section 2.2", notGlobal),
	r("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 Section 2.2", notGlobal),
	r("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", notGlobal),
	r("192.31.196.0/24", "AS112-v4", "RFC 7535", global),
	r("192.52.193.0/24", "AMT", "RFC 7450", global),
	r("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", notApplicable),
	r("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", notGlobal),
	r("192.168.0.0/16", "Private-Use", "RFC 1918", notGlobal),
	r("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", global),
	r("198.18.0.0/15", "Benchmarking", "RFC 2544", notGlobal),
	r("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", notGlobal),
	r("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", notGlobal),
	r("240.0.0.0/4", "Reserved", "RFC 1112, Section 4", notGlobal),
	r("255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919 Section 7", notGlobal),

	// IANA IPv6 Special-Purpose Address Registry.
	r("::1/128", "Loopback Address", "RFC 4291", notGlobal),
	r("::/128", "Unspecified Address", "RFC 4291", notGlobal),
	r("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", notGlobal),
	{prefix: netip.MustParsePrefix("64:ff9b::/96"), name: "IPv4-IPv6 Translat.", rfc: "RFC 6052", reach: global, embedsIPv4: true},
	r("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", notGlobal),
	r("100::/64", "Discard-Only Address Block", "RFC 6666", notGlobal),
	r("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", notGlobal),
	r("2001::/23", "IETF Protocol Assignments", "RFC 2928", notGlobal),
	r("2001::/32", "TEREDO", "RFC 4380, RFC 8190", notApplicable),
	r("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", global),
	r("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", global),
	r("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", global),
	r("2001:2::/48", "Benchmarking", "RFC 5180, RFC Errata 1752", notGlobal),
	r("2001:3::/32", "AMT", "RFC 7450", global),
	r("2001:4:112::/48", "AS112-v6", "RFC 7535", global),
	r("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", notApplicable),
	r("2001:20::/28", "ORCHIDv2", "RFC 7343", global),
	r("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", global),
	r("2001:db8::/32", "Documentation", "RFC 3849", notGlobal),
	r("2002::/16", "6to4", "RFC 3056", notApplicable),
	r("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", global),
	r("3fff::/20", "Documentation", "RFC 9637", notGlobal),
	r("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", notGlobal),
	r("fc00::/7", "Unique-Local", "RFC 4193, RFC 8190", notGlobal),
	r("fe80::/10", "Link-Local Unicast", "RFC 4291", notGlobal),

	// Multicast: IPv4 and IPv6 Multicast Address Space registries. Not
	// unicast destinations, never an HTTP API.
	r("224.0.0.0/4", "Multicast", "RFC 5771", notGlobal),
	r("ff00::/8", "Multicast", "RFC 4291", notGlobal),

	// IANA IPv6 Address Space registry: only 2000::/3 is global unicast;
	// the rest is reserved by the IETF, or special (fc00::/7 and fe80::/10
	// are in the rows above).
	r("2000::/3", "Global Unicast", "RFC 4291", global),
	r("::/8", "Reserved by IETF", "RFC 4291", notGlobal),
	r("100::/8", "Reserved by IETF", "RFC 4291", notGlobal),
	r("200::/7", "Reserved by IETF (formerly OSI NSAP-mapped)", "RFC 4048", notGlobal),
	r("400::/6", "Reserved by IETF", "RFC 4291", notGlobal),
	r("800::/5", "Reserved by IETF", "RFC 4291", notGlobal),
	r("1000::/4", "Reserved by IETF", "RFC 4291", notGlobal),
	r("4000::/3", "Reserved by IETF", "RFC 4291", notGlobal),
	r("6000::/3", "Reserved by IETF", "RFC 4291", notGlobal),
	r("8000::/3", "Reserved by IETF", "RFC 4291", notGlobal),
	r("a000::/3", "Reserved by IETF", "RFC 4291", notGlobal),
	r("c000::/3", "Reserved by IETF", "RFC 4291", notGlobal),
	r("e000::/4", "Reserved by IETF", "RFC 4291", notGlobal),
	r("f000::/5", "Reserved by IETF", "RFC 4291", notGlobal),
	r("f800::/6", "Reserved by IETF", "RFC 4291", notGlobal),
	r("fe00::/9", "Reserved by IETF", "RFC 4291", notGlobal),
	r("fec0::/10", "Site-Local (deprecated)", "RFC 3879", notGlobal),

	// IPv6 forms that embed an IPv4 address and are in no registry row of
	// their own (both inside ::/8 above; named here for the error).
	r("::/96", "IPv4-compatible Address (deprecated)", "RFC 4291, Section 2.5.5.1", notGlobal),
	r("::ffff:0:0:0/96", "IPv4-translated Address (SIIT)", "RFC 2765", notGlobal),

	// Cloud metadata services. The link-local and unique-local ones are
	// refused by the rows above already; they are named here for the
	// error message. Azure's WireServer is a public address.
	r("169.254.169.254/32", "Cloud metadata service (AWS, GCP, Azure, OCI, ...)", "", notGlobal),
	r("169.254.170.2/32", "AWS ECS task metadata", "", notGlobal),
	r("fd00:ec2::254/128", "AWS instance metadata (IPv6)", "", notGlobal),
	r("100.100.100.200/32", "Alibaba Cloud metadata service", "", notGlobal),
	r("168.63.129.16/32", "Azure WireServer", "", notGlobal),
}
