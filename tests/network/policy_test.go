package networktest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"cove/internal/engine/network"
	"cove/internal/engine/network/ipam"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// An internal network's containers talk to each other but cannot reach the
// outside namespace; a normal network's can (the control).
func TestNetInternal(t *testing.T) {
	e := newEnv(t)
	out := outside(t)
	listenTCP(t, out, outsideIP+":9000", "outside")
	if _, err := e.m.Create(network.Config{Name: "covet-int", Subnet: "10.201.7.0/24", Internal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Create(network.Config{Name: "covet-ext", Subnet: "10.201.8.0/24"}); err != nil {
		t.Fatal(err)
	}
	nsI, _ := e.attach("i1", network.AttachOptions{Network: "covet-int"})
	_, i2 := e.attach("i2", network.AttachOptions{Network: "covet-int"})
	nsX, _ := e.attach("x1", network.AttachOptions{Network: "covet-ext"})
	if got, err := dialTCP(nsX, outsideIP+":9000"); err != nil || got != "outside" {
		t.Fatalf("control: normal network cannot reach outside: %q %v", got, err)
	}
	if got, err := dialOnce(nsI, outsideIP+":9000"); err == nil {
		t.Errorf("internal network reached outside: %q", got)
	}
	if err := pingOnce(nsI, outsideIP); err == nil {
		t.Error("internal network pinged outside")
	}
	if err := ping(nsI, i2.IP); err != nil {
		t.Errorf("inside the internal network: %v", err)
	}
	nsP := newNS(t, "i3")
	if _, err := e.m.Attach(network.AttachOptions{ContainerID: "i3", NetNSPath: nsP, Network: "covet-int",
		Ports: []network.PortMapping{{HostPort: 18600, ContainerPort: 80}}}); !errors.Is(err, network.ErrInvalidConfig) {
		t.Errorf("publishing on an internal network: %v", err)
	}
}

// transfer sends size bytes from ns to addr and returns how long it took
// (until the receiver has read everything).
func transfer(t *testing.T, from, to, ip string, size int) time.Duration {
	t.Helper()
	var l net.Listener
	if err := inNS(to, func() (err error) { l, err = net.Listen("tcp", ":9100"); return }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	start := time.Now()
	err := inNS(from, func() error {
		c, err := net.Dial("tcp", net.JoinHostPort(ip, "9100"))
		if err != nil {
			return err
		}
		buf := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
		return c.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-got:
		if n < int64(size) {
			t.Fatalf("received %d of %d bytes", n, size)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("transfer did not finish")
	}
	return time.Since(start)
}

// Bandwidth limits: 4 MiB at 2 MiB/s takes about 2 s, in both directions;
// without a limit the same transfer is much faster (the control).
func TestNetBandwidth(t *testing.T) {
	e := newEnv(t)
	if _, err := e.m.Create(network.Config{Name: "covet-bw", Subnet: "10.201.9.0/24"}); err != nil {
		t.Fatal(err)
	}
	const rate = 2 << 20
	const size = 4 << 20
	nsFree, free := e.attach("b0", network.AttachOptions{Network: "covet-bw"})
	nsEg, eg := e.attach("b1", network.AttachOptions{Network: "covet-bw", Bandwidth: network.Bandwidth{EgressBps: rate}})
	nsIn, in := e.attach("b2", network.AttachOptions{Network: "covet-bw", Bandwidth: network.Bandwidth{IngressBps: rate}})
	nsFree2, free2 := e.attach("b3", network.AttachOptions{Network: "covet-bw"})

	if d := transfer(t, nsFree, nsFree2, free2.IP, size); d > 700*time.Millisecond {
		t.Errorf("unlimited transfer took %v", d)
	} else {
		t.Logf("unlimited: %v", d)
	}
	want := time.Duration(float64(size) / rate * float64(time.Second))
	for _, c := range []struct {
		name     string
		from, to string
		ip       string
	}{{"egress", nsEg, nsFree, free.IP}, {"ingress", nsFree, nsIn, in.IP}} {
		d := transfer(t, c.from, c.to, c.ip, size)
		t.Logf("%s limited to %d B/s: %d bytes in %v (expected %v)", c.name, rate, size, d, want)
		if d < want*80/100 || d > want*130/100 {
			t.Errorf("%s: %v, want %v ±20/30%%", c.name, d, want)
		}
	}
	// The egress limit lives on the host (an IFB device), out of the
	// container's reach: its own eth0 has no shaping to delete.
	h, _ := netns.GetFromPath(nsEg)
	defer h.Close()
	nh, _ := netlink.NewHandleAt(h)
	defer nh.Close()
	eth0, _ := nh.LinkByName("eth0")
	qs, _ := nh.QdiscList(eth0)
	for _, q := range qs {
		if q.Type() == "tbf" {
			t.Errorf("egress shaping inside the container: %v", q)
		}
	}
	ifb := prefix + "i" + eg.HostVeth[len(prefix)+1:]
	if _, err := netlink.LinkByName(ifb); err != nil {
		t.Errorf("ifb %s: %v", ifb, err)
	}
	if err := e.m.Detach("b1", "covet-bw"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(ifb); err == nil {
		t.Errorf("ifb %s survives detach", ifb)
	}
}

// Bad input gets a clear error and leaves nothing half-configured.
func TestNetBadInput(t *testing.T) {
	e := newEnv(t)
	if _, err := e.m.Create(network.Config{Name: "covet-x", Subnet: "10.201.10.0/24"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  network.Config
		want error
	}{
		{network.Config{Name: "covet-y", Subnet: "10.201.10.128/25"}, network.ErrOverlap},
		{network.Config{Name: "covet-y", Subnet: "10.201.0.0/16"}, network.ErrOverlap},
		{network.Config{Name: "covet-y", Subnet: hostRoute(t)}, network.ErrOverlap},
		{network.Config{Name: "covet-y", Subnet: "10.201.300.0/24"}, network.ErrInvalidConfig},
		{network.Config{Name: "covet-y", Subnet: "10.201.11.1/24"}, network.ErrInvalidConfig},
		{network.Config{Name: "covet-y", Subnet: "10.201.11.0/24", Gateway: "10.201.12.1"}, network.ErrInvalidConfig},
		{network.Config{Name: "covet-y", Subnet: "10.201.11.0/24", IPv6Subnet: "fd00::/129"}, network.ErrInvalidConfig},
		{network.Config{Name: "covet-x", Subnet: "10.201.11.0/24"}, network.ErrExists},
		{network.Config{Name: "bad/name", Subnet: "10.201.11.0/24"}, network.ErrInvalidConfig},
		{network.Config{Name: "covet-y", Subnet: "10.201.11.0/24", Driver: "macvlan"}, network.ErrInvalidConfig},
		{network.Config{Name: "covet-y", Subnet: "10.201.11.0/24", Bridge: "lo"}, network.ErrInvalidConfig},
	} {
		_, err := e.m.Create(c.cfg)
		if !errors.Is(err, c.want) {
			t.Errorf("Create(%+v): %v, want %v", c.cfg, err, c.want)
		} else {
			t.Logf("refused: %v", err)
		}
	}
	if nets, _ := e.m.List(); len(nets) != 1 {
		t.Errorf("networks after refusals: %v", nets)
	}

	// Exhausted /30: one address after the gateway, the second attach fails cleanly.
	if _, err := e.m.Create(network.Config{Name: "covet-tiny", Subnet: "10.201.12.0/30"}); err != nil {
		t.Fatal(err)
	}
	e.attach("t1", network.AttachOptions{Network: "covet-tiny"})
	ns2 := newNS(t, "t2")
	_, err := e.m.Attach(network.AttachOptions{ContainerID: "t2", NetNSPath: ns2, Network: "covet-tiny"})
	if !errors.Is(err, ipam.ErrExhausted) {
		t.Errorf("exhausted subnet: %v", err)
	}
	if v := vethsLeft(t); len(v) != 1 {
		t.Errorf("veths after exhausted attach: %v", v)
	}
	for _, o := range []network.AttachOptions{
		{ContainerID: "t2", NetNSPath: ns2, Network: "covet-nope"},
		{ContainerID: "t2", NetNSPath: "/nonexistent/ns", Network: "covet-x"},
		{ContainerID: "t2", NetNSPath: ns2, Network: "covet-x", IP: "10.201.13.5"},
		{ContainerID: "t2", NetNSPath: ns2, Network: "covet-x", IP: "10.201.10.1"},
		{ContainerID: "t2", NetNSPath: ns2, Network: "covet-x", MAC: "01:00:00:00:00:01"},
		{ContainerID: "t2", NetNSPath: ns2, Network: "covet-x", Ports: []network.PortMapping{{HostPort: 18700, ContainerPort: 80, Proto: "sctp"}}},
		{ContainerID: "", NetNSPath: ns2, Network: "covet-x"},
	} {
		if _, err := e.m.Attach(o); err == nil {
			t.Errorf("Attach(%+v) succeeded", o)
		} else {
			t.Logf("refused: %v", err)
		}
	}
	if v := vethsLeft(t); len(v) != 1 {
		t.Errorf("veths after refused attaches: %v", v)
	}
	// Remove while in use, then after detach; prune leaves used networks.
	if err := e.m.Remove("covet-tiny"); !errors.Is(err, network.ErrInUse) {
		t.Errorf("remove in use: %v", err)
	}
	pruned, err := e.m.Prune()
	if err != nil || fmt.Sprint(pruned) != "[covet-x]" {
		t.Errorf("prune: %v %v", pruned, err)
	}
	e.m.Detach("t1", "covet-tiny")
	if err := e.m.Remove("covet-tiny"); err != nil {
		t.Errorf("remove after detach: %v", err)
	}
	if r := append(rulesTagged(t, "att:"), append(rulesTagged(t, "net:"), rulesTagged(t, "iso:")...)...); len(r) != 0 {
		t.Errorf("rules left with no network: %v", r)
	}
	if err := e.m.Remove("covet-tiny"); !errors.Is(err, network.ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
}

// hostRoute returns a subnet the host routes somewhere else: the first
// non-default IPv4 route that is not one of the tests'.
func hostRoute(t *testing.T) string {
	out, err := runOut("ip", "-4", "route", "show", "scope", "link")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && strings.Contains(f[0], "/") && !strings.Contains(line, prefix) {
			return f[0]
		}
	}
	t.Skip("host has no link route to collide with")
	return ""
}

// IPv6: two containers on a dual-stack network talk over their ULA addresses.
func TestNetIPv6(t *testing.T) {
	e := newEnv(t)
	if _, err := e.m.Create(network.Config{Name: "covet-v6", Subnet: "10.201.14.0/24", IPv6Subnet: "fd00:c0fe:14::/64"}); err != nil {
		t.Fatal(err)
	}
	ns1, a1 := e.attach("s1", network.AttachOptions{Network: "covet-v6"})
	ns2, a2 := e.attach("s2", network.AttachOptions{Network: "covet-v6"})
	if !strings.HasPrefix(a1.IPv6, "fd00:c0fe:14::") || a1.IPv6 == a2.IPv6 {
		t.Fatalf("ipv6 addresses %q %q", a1.IPv6, a2.IPv6)
	}
	listenTCP(t, ns2, "[::]:8080", "v6 hello")
	if got, err := dialTCP(ns1, net.JoinHostPort(a2.IPv6, "8080")); err != nil || got != "v6 hello" {
		t.Errorf("tcp over ipv6: %q %v", got, err)
	}
	if err := ping(ns1, a1.IPv6Gateway); err != nil {
		t.Errorf("ipv6 gateway: %v", err)
	}
}
