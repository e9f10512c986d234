package networktest

import (
	"errors"
	"net"
	"strings"
	"testing"

	"cove/internal/engine/network"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Two containers on one network talk (ping, TCP); a third on another
// network cannot reach them, nor they it.
func TestNetConnectivityAndIsolation(t *testing.T) {
	e := newEnv(t)
	for _, c := range []network.Config{{Name: "covet-a", Subnet: "10.201.1.0/24"}, {Name: "covet-b", Subnet: "10.201.2.0/24"}} {
		if _, err := e.m.Create(c); err != nil {
			t.Fatal(err)
		}
	}
	ns1, a1 := e.attach("c1", network.AttachOptions{Network: "covet-a", IP: "10.201.1.50", MAC: "02:00:00:aa:bb:01"})
	ns2, a2 := e.attach("c2", network.AttachOptions{Network: "covet-a"})
	ns3, a3 := e.attach("c3", network.AttachOptions{Network: "covet-b"})
	if a1.IP != "10.201.1.50" || a2.IP == a1.IP || !strings.HasPrefix(a3.IP, "10.201.2.") {
		t.Fatalf("addresses: %s %s %s", a1.IP, a2.IP, a3.IP)
	}

	// The kernel side of c1: eth0 with its MAC and address, lo up, default route.
	h, _ := netns.GetFromPath(ns1)
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	defer h.Close()
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in container: %v", err)
	}
	if eth0.Attrs().HardwareAddr.String() != "02:00:00:aa:bb:01" {
		t.Errorf("mac %s", eth0.Attrs().HardwareAddr)
	}
	addrs, _ := nh.AddrList(eth0, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.201.1.50/24" {
		t.Errorf("eth0 addresses %v", addrs)
	}
	lo, _ := nh.LinkByName("lo")
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo is down")
	}
	routes, _ := nh.RouteList(eth0, netlink.FAMILY_V4)
	var gw string
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			gw = r.Gw.String()
		}
	}
	if gw != "10.201.1.1" {
		t.Errorf("default route via %q, want 10.201.1.1 (routes %v)", gw, routes)
	}

	if err := ping(ns1, a2.IP); err != nil {
		t.Errorf("same network: %v", err)
	}
	listenTCP(t, ns2, ":8080", "hello from c2")
	if got, err := dialTCP(ns1, net.JoinHostPort(a2.IP, "8080")); err != nil || got != "hello from c2" {
		t.Errorf("same network TCP: %q %v", got, err)
	}
	// Across networks: nothing gets through, in either direction.
	listenTCP(t, ns3, ":8080", "hello from c3")
	if got, err := dialOnce(ns1, net.JoinHostPort(a3.IP, "8080")); err == nil {
		t.Errorf("c1 reached c3 on another network: %q", got)
	}
	if got, err := dialOnce(ns3, net.JoinHostPort(a2.IP, "8080")); err == nil {
		t.Errorf("c3 reached c2 on another network: %q", got)
	}
	if err := pingOnce(ns3, a1.IP); err == nil {
		t.Error("c3 pinged c1 on another network")
	}
	// The host reaches both (as the engine's health checks would).
	if got, err := dialTCP("", net.JoinHostPort(a3.IP, "8080")); err != nil || got != "hello from c3" {
		t.Errorf("host to c3: %q %v", got, err)
	}

	// Detach is complete and idempotent.
	if err := e.m.Detach("c2", "covet-a"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Detach("c2", "covet-a"); err != nil {
		t.Fatalf("second detach: %v", err)
	}
	if _, err := netlink.LinkByName(a2.HostVeth); err == nil {
		t.Errorf("veth %s survives detach", a2.HostVeth)
	}
	if n, _ := e.m.Inspect("covet-a"); len(n.Containers) != 1 {
		t.Errorf("containers after detach: %v", n.Containers)
	}
}

// A container attached to two networks gets eth0 and eth1 and reaches both.
func TestNetMultipleNetworks(t *testing.T) {
	e := newEnv(t)
	for _, c := range []network.Config{{Name: "covet-a", Subnet: "10.201.3.0/24"}, {Name: "covet-b", Subnet: "10.201.4.0/24", MTU: 1400}} {
		if _, err := e.m.Create(c); err != nil {
			t.Fatal(err)
		}
	}
	ns1, _ := e.attach("m1", network.AttachOptions{Network: "covet-a"})
	a1b, err := e.m.Attach(network.AttachOptions{ContainerID: "m1", NetNSPath: ns1, Network: "covet-b"})
	if err != nil {
		t.Fatal(err)
	}
	if a1b.IfName != "eth1" {
		t.Errorf("second interface %s", a1b.IfName)
	}
	h, _ := netns.GetFromPath(ns1)
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	if l, err := nh.LinkByName("eth1"); err != nil || l.Attrs().MTU != 1400 {
		t.Errorf("eth1 on the MTU 1400 network: %v %v", l, err)
	}
	_, a2 := e.attach("m2", network.AttachOptions{Network: "covet-b"})
	if err := ping(ns1, a2.IP); err != nil {
		t.Errorf("via second network: %v", err)
	}
	if _, err := e.m.Attach(network.AttachOptions{ContainerID: "m1", NetNSPath: ns1, Network: "covet-b"}); !errors.Is(err, network.ErrAttached) {
		t.Errorf("double attach: %v", err)
	}
}

// --network none: the namespace gets loopback only, and it is up.
func TestNetModeNone(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "none")
	m, err := network.ParseMode("none")
	if err != nil || !m.NeedsNamespace() {
		t.Fatalf("mode none: %+v %v", m, err)
	}
	if err := network.LoopbackUp(ns); err != nil {
		t.Fatal(err)
	}
	listenTCP(t, ns, "127.0.0.1:8080", "lo")
	if got, err := dialTCP(ns, "127.0.0.1:8080"); err != nil || got != "lo" {
		t.Errorf("loopback in mode none: %q %v", got, err)
	}
	h, _ := netns.GetFromPath(ns)
	defer h.Close()
	nh, _ := netlink.NewHandleAt(h)
	defer nh.Close()
	if links, _ := nh.LinkList(); len(links) != 1 {
		t.Errorf("links in mode none: %d, want lo only", len(links))
	}
}
