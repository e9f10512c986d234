package engine

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"cove/internal/engine/quota"
)

// NetworkOptions are the network flags of `cove run` beyond --network, -p,
// --dns, --add-host and --network-alias, and the networks a container was
// connected to later (`cove network connect`), kept with the container so
// a restart attaches it to all of them again.
type NetworkOptions struct {
	// NetworkFlags are the --network flags as given; Normalize moves the
	// first into Network and the rest into Networks.
	NetworkFlags []string `json:"-"`
	// Networks are the container's networks after the first (eth1, eth2, ...).
	Networks []NetworkConn `json:"networks,omitempty"`
	// IP, IPv6 and MAC are --ip, --ip6 and --mac-address on the first network.
	IP   string `json:"ip,omitempty"`
	IPv6 string `json:"ipv6,omitempty"`
	MAC  string `json:"mac,omitempty"`
	// PublishAll (-P) publishes every port the image EXPOSEs on a random host port.
	PublishAll bool     `json:"publishAll,omitempty"`
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	// IngressBps and EgressBps (--network-ingress-bps, --network-egress-bps)
	// cap the traffic to and from the container in bytes per second (1m,
	// 500k); the limits sit on the host side of every interface.
	IngressBps string `json:"ingressBps,omitempty"`
	EgressBps  string `json:"egressBps,omitempty"`
}

// NetworkConn is one more network of a container.
type NetworkConn struct {
	Name    string   `json:"name"`
	IP      string   `json:"ip,omitempty"`
	IPv6    string   `json:"ipv6,omitempty"`
	MAC     string   `json:"mac,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
}

// normalize moves NetworkFlags into Network and Networks and checks the
// addresses and rates.
func (o *RunOptions) normalizeNetwork() error {
	if len(o.NetworkFlags) > 0 {
		o.Network = o.NetworkFlags[0]
		for _, n := range o.NetworkFlags[1:] {
			if isSpecialNetwork(n) || isSpecialNetwork(o.Network) {
				return fmt.Errorf("--network %s: only user networks (and bridge) can be combined", n)
			}
			for _, c := range o.Networks {
				if c.Name == n {
					return fmt.Errorf("--network %s given twice", n)
				}
			}
			if n == o.Network {
				return fmt.Errorf("--network %s given twice", n)
			}
			o.Networks = append(o.Networks, NetworkConn{Name: n})
		}
		o.NetworkFlags = nil
	}
	if o.IP != "" {
		if a, err := netip.ParseAddr(o.IP); err != nil || !a.Is4() {
			return fmt.Errorf("--ip %s: not an IPv4 address", o.IP)
		}
	}
	if o.IPv6 != "" {
		if a, err := netip.ParseAddr(o.IPv6); err != nil || !a.Is6() {
			return fmt.Errorf("--ip6 %s: not an IPv6 address", o.IPv6)
		}
	}
	if o.MAC != "" {
		if hw, err := net.ParseMAC(o.MAC); err != nil || len(hw) != 6 || hw[0]&1 != 0 {
			return fmt.Errorf("--mac-address %s: want a unicast 48-bit address", o.MAC)
		}
	}
	if (o.IP != "" || o.IPv6 != "" || o.MAC != "" || o.PublishAll || len(o.Publish) > 0) && isSpecialNetwork(o.Network) {
		return fmt.Errorf("--network %s: --ip, --mac-address and -p/-P need a bridge or user network", o.Network)
	}
	for _, d := range o.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("--dns %s: not an IP address", d)
		}
	}
	for _, s := range o.DNSSearch {
		if s == "" || strings.ContainsAny(s, " \t\n") {
			return fmt.Errorf("--dns-search %q: not a domain", s)
		}
	}
	for _, s := range o.DNSOptions {
		if s == "" || strings.ContainsAny(s, " \t\n") {
			return fmt.Errorf("--dns-option %q: want one option such as ndots:2", s)
		}
	}
	if _, _, err := o.bandwidth(); err != nil {
		return err
	}
	return nil
}

// isSpecialNetwork reports whether a --network value is a mode rather than
// a network: none, host, container:X, ns:PATH.
func isSpecialNetwork(n string) bool {
	return n == "none" || n == "host" || strings.HasPrefix(n, "container:") || strings.HasPrefix(n, "ns:")
}

// bandwidth parses the rate flags into bytes per second.
func (o *NetworkOptions) bandwidth() (in, out uint64, err error) {
	parse := func(flag, s string) (uint64, error) {
		if s == "" {
			return 0, nil
		}
		n, err := quota.ParseSize(s)
		if err != nil || n < 1024 {
			return 0, fmt.Errorf("%s %s: want a rate of at least 1k bytes per second (500k, 10m)", flag, s)
		}
		return uint64(n), nil
	}
	if in, err = parse("--network-ingress-bps", o.IngressBps); err != nil {
		return 0, 0, err
	}
	out, err = parse("--network-egress-bps", o.EgressBps)
	return in, out, err
}
