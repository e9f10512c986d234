package nft

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
)

func TestMatchAddrPrefix(t *testing.T) {
	e := matchSrc(netip.MustParsePrefix("10.89.3.4/16"))
	var mask, data []byte
	var off uint32
	for _, x := range e {
		switch v := x.(type) {
		case *expr.Bitwise:
			mask = v.Mask
		case *expr.Cmp:
			data = v.Data
		case *expr.Payload:
			off = v.Offset
		}
	}
	if off != 12 || !bytes.Equal(mask, []byte{255, 255, 0, 0}) || !bytes.Equal(data, []byte{10, 89, 0, 0}) {
		t.Errorf("ipv4 saddr /16: offset %d mask %v data %v", off, mask, data)
	}
	e = matchDst(netip.MustParsePrefix("fd00::1/128"))
	for _, x := range e {
		if _, ok := x.(*expr.Bitwise); ok {
			t.Error("a /128 needs no mask")
		}
		if p, ok := x.(*expr.Payload); ok && (p.Offset != 24 || p.Len != 16) {
			t.Errorf("ipv6 daddr payload at %d len %d", p.Offset, p.Len)
		}
	}
}

func TestDNATRejects(t *testing.T) {
	c := netip.MustParseAddr("10.89.0.2")
	if _, err := DNAT("t", netip.Addr{}, "sctp", 80, c, 80); err == nil {
		t.Error("sctp accepted")
	}
	if _, err := DNAT("t", netip.MustParseAddr("::1"), "tcp", 80, c, 80); err == nil {
		t.Error("mixed families accepted")
	}
	r, err := DNAT("t", netip.Addr{}, "udp", 8053, c, 53)
	if err != nil || r.Chain != ChainPorts || r.Tag != "t" {
		t.Errorf("udp dnat: %+v %v", r, err)
	}
}
