package ipam

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParsePool(t *testing.T) {
	for _, tc := range []struct {
		subnet, rng, gw string
		wantGW          string
		bad             bool
	}{
		{"10.89.0.0/16", "", "", "10.89.0.1", false},
		{"10.89.0.0/16", "10.89.5.0/24", "10.89.0.254", "10.89.0.254", false},
		{"fd00:c0e::/64", "", "", "fd00:c0e::1", false},
		{"10.89.0.1/16", "", "", "", true}, // host bits
		{"10.89.0.0/33", "", "", "", true}, // bad prefix
		{"nonsense", "", "", "", true},     // not a CIDR
		{"10.89.0.0/31", "", "", "", true}, // too small
		{"10.89.0.0/24", "10.90.0.0/25", "", "", true},
		{"10.89.0.0/24", "", "10.89.0.255", "", true}, // broadcast
		{"10.89.0.0/24", "", "10.89.1.1", "", true},   // outside
	} {
		p, err := ParsePool(tc.subnet, tc.rng, tc.gw)
		if (err != nil) != tc.bad {
			t.Errorf("ParsePool(%q,%q,%q) err=%v, want bad=%v", tc.subnet, tc.rng, tc.gw, err, tc.bad)
			continue
		}
		if err == nil && p.Gateway.String() != tc.wantGW {
			t.Errorf("gateway %s, want %s", p.Gateway, tc.wantGW)
		}
	}
}

func TestAllocateExhaustsSlash30(t *testing.T) {
	p, err := ParsePool("10.99.0.0/30", "", "")
	if err != nil {
		t.Fatal(err)
	}
	used := map[netip.Addr]bool{}
	a, err := p.Allocate(used, netip.Addr{})
	if err != nil || a.String() != "10.99.0.2" {
		t.Fatalf("first allocation %s, %v", a, err)
	}
	used[a] = true
	if _, err := p.Allocate(used, netip.Addr{}); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want ErrExhausted, got %v", err)
	}
}

func TestAllocateRequested(t *testing.T) {
	p, _ := ParsePool("10.99.0.0/24", "10.99.0.128/25", "")
	used := map[netip.Addr]bool{netip.MustParseAddr("10.99.0.130"): true}
	if a, _ := p.Allocate(used, netip.Addr{}); a.String() != "10.99.0.128" {
		t.Errorf("range start: got %s", a)
	}
	if _, err := p.Allocate(used, netip.MustParseAddr("10.99.0.130")); !errors.Is(err, ErrInUse) {
		t.Errorf("taken: %v", err)
	}
	if _, err := p.Allocate(used, netip.MustParseAddr("10.99.0.1")); !errors.Is(err, ErrInUse) {
		t.Errorf("gateway: %v", err)
	}
	if _, err := p.Allocate(used, netip.MustParseAddr("10.98.0.1")); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("outside: %v", err)
	}
	if a, err := p.Allocate(used, netip.MustParseAddr("10.99.0.5")); err != nil || a.String() != "10.99.0.5" {
		t.Errorf("static outside range but in subnet: %s %v", a, err)
	}
}
