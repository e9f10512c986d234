package network

import (
	"net/netip"
	"testing"
)

func TestNamesTable(t *testing.T) {
	st := &state{Attachments: []*Attachment{
		{ContainerID: "0123456789abcdef", Name: "Web", Network: "n1", IP: "10.0.0.2", IPv6: "fd00::2", Aliases: []string{"www."}, DNS: []string{"192.0.2.53"}},
		{ContainerID: "fedcba9876543210", Name: "db", Network: "n1", IP: "10.0.0.3"},
		{ContainerID: "other", Name: "web", Network: "n2", IP: "10.1.0.2"},
		// db is also on n3, where cache lives.
		{ContainerID: "fedcba9876543210", Name: "db", Network: "n3", IP: "10.2.0.3"},
		{ContainerID: "cache0000000", Name: "cache", Network: "n3", IP: "10.2.0.4"},
	}}
	all, nets, ups := names(st, "n1")
	names := all["n1"]
	if a := names["web"]; len(a) != 2 || a[0].String() != "10.0.0.2" || a[1].String() != "fd00::2" {
		t.Errorf("web: %v (lower case, both families, not n2's)", a)
	}
	if a := names["www"]; len(a) != 2 {
		t.Errorf("alias www: %v", a)
	}
	if a := names["0123456789ab"]; len(a) != 2 {
		t.Errorf("short id: %v", a)
	}
	if u := ups[netip.MustParseAddr("10.0.0.2")]; len(u) != 1 || u[0] != "192.0.2.53:53" {
		t.Errorf("--dns upstream of web: %v", u)
	}
	if u := ups[netip.MustParseAddr("10.0.0.3")]; u != nil {
		t.Errorf("db has no --dns: %v", u)
	}

	// n1's server answers db (on n1 and n3) for cache, at its n3 address;
	// web (only on n1) gets no answer for cache.
	tab := &nameTable{network: "n1", names: all, nets: nets}
	if a, ok := tab.lookupNoRefresh(netip.MustParseAddr("10.0.0.3"), "cache"); !ok || len(a) != 1 || a[0].String() != "10.2.0.4" {
		t.Errorf("cache from db: %v %v, want 10.2.0.4 (its other network)", a, ok)
	}
	if a, ok := tab.lookupNoRefresh(netip.MustParseAddr("10.0.0.2"), "cache"); ok {
		t.Errorf("cache from web (not on n3): %v, want no answer", a)
	}
	if a, ok := tab.lookupNoRefresh(netip.MustParseAddr("10.0.0.3"), "web"); !ok || a[0].String() != "10.0.0.2" {
		t.Errorf("web from db: %v, want n1's web, not n2's", a)
	}
}

func TestTags(t *testing.T) {
	if isoTag("b", "a") != "iso:a|b" || isoTag("a", "b") != "iso:a|b" {
		t.Error("isoTag not symmetric")
	}
	for tag, want := range map[string]bool{"iso:a|b": true, "iso:b|a": true, "iso:ab|c": false, "net:a": false, "iso:c|d": false} {
		if isoOf(tag, "a") != want {
			t.Errorf("isoOf(%q, a) = %v", tag, !want)
		}
	}
}

func TestVethNameAvoidsClash(t *testing.T) {
	m := &Manager{prefix: "cove"}
	st := &state{}
	first := m.vethName(st, "c1", "n")
	if len(first) != 13 || first != m.vethName(st, "c1", "n") {
		t.Fatalf("veth name %q not stable or wrong length", first)
	}
	st.Attachments = []*Attachment{{HostVeth: first}}
	if again := m.vethName(st, "c1", "n"); again == first {
		t.Errorf("name %s reused while taken", again)
	}
}

func TestParseNameservers(t *testing.T) {
	got := Nameservers([]byte("# c\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\nnameserver bogus\nsearch x\n"))
	if len(got) != 2 || got[0] != "192.0.2.1" || got[1] != "fe80::1" {
		t.Errorf("nameservers %v", got)
	}
}
