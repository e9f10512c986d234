// Package ipam hands out addresses from a subnet: it parses and validates
// a pool (subnet, optional allocation range, gateway) and picks the first
// free address given the set already in use. It keeps no state of its own;
// callers persist allocations (the network package does, under a lock).
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrExhausted means every usable address of the pool is taken.
	ErrExhausted = errors.New("address pool exhausted")
	// ErrInUse means a requested address is already allocated.
	ErrInUse = errors.New("address already in use")
	// ErrOutOfRange means a requested address lies outside the pool.
	ErrOutOfRange = errors.New("address outside the pool")
)

// Pool is one subnet to allocate from.
type Pool struct {
	// Subnet is the network, masked (10.89.0.0/16).
	Subnet netip.Prefix
	// Range restricts dynamic allocation to a part of Subnet; zero means all of it.
	Range netip.Prefix
	// Gateway is never handed out.
	Gateway netip.Addr
}

// ParsePool validates subnet (required), ipRange and gateway (both optional;
// the gateway defaults to the first host address).
func ParsePool(subnet, ipRange, gateway string) (Pool, error) {
	var p Pool
	s, err := netip.ParsePrefix(subnet)
	if err != nil {
		return p, fmt.Errorf("invalid subnet %q: %w", subnet, err)
	}
	if s.Masked() != s {
		return p, fmt.Errorf("invalid subnet %q: host bits set (did you mean %s?)", subnet, s.Masked())
	}
	max := 32
	if s.Addr().Is6() {
		max = 128
	}
	if s.Bits() > max-2 {
		return p, fmt.Errorf("invalid subnet %q: too small (at most /%d)", subnet, max-2)
	}
	p.Subnet = s
	if ipRange != "" {
		r, err := netip.ParsePrefix(ipRange)
		if err != nil {
			return p, fmt.Errorf("invalid ip range %q: %w", ipRange, err)
		}
		r = r.Masked()
		if r.Bits() < s.Bits() || !s.Contains(r.Addr()) {
			return p, fmt.Errorf("ip range %s is not inside subnet %s", r, s)
		}
		p.Range = r
	}
	if gateway != "" {
		g, err := netip.ParseAddr(gateway)
		if err != nil {
			return p, fmt.Errorf("invalid gateway %q: %w", gateway, err)
		}
		if !p.usable(g) {
			return p, fmt.Errorf("gateway %s is not a host address of subnet %s", g, s)
		}
		p.Gateway = g
	} else {
		p.Gateway = s.Addr().Next()
	}
	return p, nil
}

// Overlaps reports whether two prefixes share any address.
func Overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// usable reports whether a is a host address of the subnet (not the network
// address, not the IPv4 broadcast address).
func (p Pool) usable(a netip.Addr) bool {
	if !p.Subnet.Contains(a) || a == p.Subnet.Addr() {
		return false
	}
	if a.Is4() && a == lastAddr(p.Subnet) {
		return false
	}
	return true
}

// Allocate returns want if it is free and valid, or (want invalid) the
// first free address of the range. used holds the addresses already taken.
func (p Pool) Allocate(used map[netip.Addr]bool, want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		switch {
		case !p.usable(want):
			return netip.Addr{}, fmt.Errorf("%s in %s: %w", want, p.Subnet, ErrOutOfRange)
		case want == p.Gateway:
			return netip.Addr{}, fmt.Errorf("%s is the gateway: %w", want, ErrInUse)
		case used[want]:
			return netip.Addr{}, fmt.Errorf("%s: %w", want, ErrInUse)
		}
		return want, nil
	}
	r := p.Range
	if !r.IsValid() {
		r = p.Subnet
	}
	// Scan at most a few million addresses; IPv6 /64 ranges are never full.
	const maxScan = 1 << 22
	a := r.Addr()
	for i := 0; i < maxScan && r.Contains(a); i++ {
		if p.usable(a) && a != p.Gateway && !used[a] {
			return a, nil
		}
		a = a.Next()
		if !a.IsValid() {
			break
		}
	}
	return netip.Addr{}, fmt.Errorf("subnet %s: %w", r, ErrExhausted)
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
