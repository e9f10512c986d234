package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// resolvePorts validates port mappings, fills in defaults and random host
// ports, and refuses host ports another cove mapping or a host socket holds.
func resolvePorts(st *state, n *Network, in []PortMapping) ([]PortMapping, error) {
	if len(in) > 0 && n.Internal {
		return nil, fmt.Errorf("network %s is internal: %w: ports cannot be published", n.Name, ErrInvalidConfig)
	}
	var out []PortMapping
	for _, p := range in {
		if p.Proto == "" {
			p.Proto = "tcp"
		}
		if p.Proto != "tcp" && p.Proto != "udp" {
			return nil, fmt.Errorf("port %d/%s: %w: protocol must be tcp or udp", p.ContainerPort, p.Proto, ErrInvalidConfig)
		}
		if p.HostIP != "" {
			a, err := netip.ParseAddr(p.HostIP)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("host ip %q: %w: want an IPv4 address", p.HostIP, ErrInvalidConfig)
			}
			if a.IsUnspecified() {
				p.HostIP = ""
			}
		}
		span := uint32(max(p.Range, 1))
		if p.ContainerPort == 0 || uint32(p.ContainerPort)+span-1 > 65535 || uint32(p.HostPort)+span-1 > 65535 {
			return nil, fmt.Errorf("port mapping %d->%d (range %d): %w", p.HostPort, p.ContainerPort, span, ErrInvalidConfig)
		}
		taken := func(hp uint16) error {
			for i := uint16(0); i < uint16(span); i++ {
				if err := portFree(st, out, p.HostIP, p.Proto, hp+i); err != nil {
					return err
				}
			}
			return nil
		}
		if p.HostPort == 0 {
			hp, err := randomPort(p.HostIP, p.Proto, uint16(span), taken)
			if err != nil {
				return nil, err
			}
			p.HostPort = hp
		} else if err := taken(p.HostPort); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// randomPort asks the kernel for a free port (trying a few times until
// check accepts it and the following span-1 ports).
func randomPort(hostIP, proto string, span uint16, check func(uint16) error) (uint16, error) {
	for try := 0; try < 64; try++ {
		p, err := kernelPort(hostIP, proto)
		if err != nil {
			return 0, err
		}
		if uint32(p)+uint32(span)-1 <= 65535 && check(p) == nil {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free %s host port found: %w", proto, ErrPortTaken)
}

func kernelPort(hostIP, proto string) (uint16, error) {
	addr := net.JoinHostPort(hostIP, "0")
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return 0, fmt.Errorf("pick a udp port: %w", err)
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return 0, fmt.Errorf("pick a tcp port: %w", err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// portFree checks one host port against cove's mappings (existing, and
// earlier ones of the same request) and against host sockets, by binding it.
func portFree(st *state, pending []PortMapping, hostIP, proto string, port uint16) error {
	clash := func(p PortMapping) bool {
		if p.Proto != proto || (p.HostIP != "" && hostIP != "" && p.HostIP != hostIP) {
			return false
		}
		return port >= p.HostPort && uint32(port) < uint32(p.HostPort)+uint32(max(p.Range, 1))
	}
	for _, a := range st.Attachments {
		for _, p := range a.Ports {
			if clash(p) {
				return fmt.Errorf("%s port %d: %w: published by container %s", proto, port, ErrPortTaken, a.ContainerID)
			}
		}
	}
	for _, p := range pending {
		if clash(p) {
			return fmt.Errorf("%s port %d: %w: given twice", proto, port, ErrPortTaken)
		}
	}
	addr := net.JoinHostPort(hostIP, strconv.Itoa(int(port)))
	shown := addr
	if hostIP == "" {
		shown = "0.0.0.0" + addr
	}
	var err error
	if proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", addr); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			l.Close()
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s %s: %w: a host process listens there", proto, shown, ErrPortTaken)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s %s: %w: not a local address", proto, shown, ErrInvalidConfig)
	default:
		return fmt.Errorf("check %s %s: %w", proto, shown, err)
	}
}
