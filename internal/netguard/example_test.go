package netguard_test

import (
	"fmt"
	"net/netip"

	"customactions/internal/netguard"
)

// Check names the registry row that refuses an address; NAT64 addresses
// are judged by the IPv4 address they embed.
func ExampleCheck() {
	for _, s := range []string{"8.8.8.8", "169.254.169.254", "64:ff9b::8.8.8.8", "64:ff9b::127.0.0.1", "2002:7f00:1::1"} {
		fmt.Println(s, netguard.Check(netip.MustParseAddr(s)))
	}
	// Output:
	// 8.8.8.8 <nil>
	// 169.254.169.254 address not allowed: 169.254.169.254 is in 169.254.169.254/32 (Cloud metadata service (AWS, GCP, Azure, OCI, ...)): only public addresses may be called, not loopback, private or link-local ones or other special ranges
	// 64:ff9b::8.8.8.8 <nil>
	// 64:ff9b::127.0.0.1 address not allowed: 64:ff9b::7f00:1 is in 64:ff9b::/96 (IPv4-IPv6 Translat., RFC 6052) and embeds 127.0.0.1, which is not public
	// 2002:7f00:1::1 address not allowed: 2002:7f00:1::1 is in 2002::/16 (6to4, RFC 3056): only public addresses may be called, not loopback, private or link-local ones or other special ranges
}
