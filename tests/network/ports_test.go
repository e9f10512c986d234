package networktest

import (
	"errors"
	"net"
	"strconv"
	"testing"

	"cove/internal/engine/network"
)

// Published TCP and UDP ports, a range and a random port answer from the
// host through 127.0.0.1 and from an outside namespace through the host's
// address; a taken port is refused; detach unpublishes.
func TestNetPublishedPorts(t *testing.T) {
	e := newEnv(t)
	out := outside(t)
	ports := []network.PortMapping{
		{HostPort: 18080, ContainerPort: 80},
		{HostPort: 18081, ContainerPort: 81, Proto: "udp"},
		{HostPort: 18090, ContainerPort: 90, Range: 2},
		{ContainerPort: 82},
	}
	ns, a := e.attach("p1", network.AttachOptions{Ports: ports}) // default network
	if a.Network != network.DefaultNetwork || a.Ports[3].HostPort == 0 {
		t.Fatalf("attachment %+v", a)
	}
	listenTCP(t, ns, ":80", "tcp80")
	listenUDP(t, ns, ":81", "udp81")
	listenTCP(t, ns, ":90", "tcp90")
	listenTCP(t, ns, ":91", "tcp91")
	listenTCP(t, ns, ":82", "tcp82")
	random := strconv.Itoa(int(a.Ports[3].HostPort))

	for _, c := range []struct{ from, host string }{{"", "127.0.0.1"}, {out, outsideHost}} {
		where := "host"
		if c.from != "" {
			where = "outside"
		}
		for port, want := range map[string]string{"18080": "tcp80", "18090": "tcp90", "18091": "tcp91", random: "tcp82"} {
			if got, err := dialTCP(c.from, net.JoinHostPort(c.host, port)); err != nil || got != want {
				t.Errorf("%s -> %s:%s: %q %v, want %q", where, c.host, port, got, err, want)
			}
		}
		if got, err := dialUDP(c.from, net.JoinHostPort(c.host, "18081")); err != nil || got != "udp81" {
			t.Errorf("%s -> udp %s:18081: %q %v", where, c.host, got, err)
		}
	}
	// Hairpin: the container reaches its own published port via the host address.
	if got, err := dialTCP(ns, net.JoinHostPort(outsideHost, "18080")); err != nil || got != "tcp80" {
		t.Errorf("hairpin: %q %v", got, err)
	}
	// A container on the network reaches the outside namespace (masquerade).
	listenTCP(t, out, outsideIP+":9000", "outside")
	if got, err := dialTCP(ns, net.JoinHostPort(outsideIP, "9000")); err != nil || got != "outside" {
		t.Errorf("outbound NAT: %q %v", got, err)
	}

	// Taken ports: by another cove mapping, and by a host socket. The failed
	// attaches leave no veth behind.
	before := len(vethsLeft(t))
	nsq := newNS(t, "p2")
	_, err := e.m.Attach(network.AttachOptions{ContainerID: "p2", NetNSPath: nsq, Ports: []network.PortMapping{{HostPort: 18091, ContainerPort: 80}}})
	if !errors.Is(err, network.ErrPortTaken) {
		t.Errorf("port of another container: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := uint16(l.Addr().(*net.TCPAddr).Port)
	_, err = e.m.Attach(network.AttachOptions{ContainerID: "p2", NetNSPath: nsq, Ports: []network.PortMapping{{HostPort: busy, ContainerPort: 80}}})
	if !errors.Is(err, network.ErrPortTaken) {
		t.Errorf("port with a host listener: %v", err)
	} else {
		t.Logf("refused as expected: %v", err)
	}
	if n := len(vethsLeft(t)); n != before {
		t.Errorf("failed attaches left veths: %v", vethsLeft(t))
	}

	if err := e.m.Detach("p1", ""); err != nil {
		t.Fatal(err)
	}
	if tags := rulesTagged(t, "att:"); len(tags) != 0 {
		t.Errorf("rules left after detach: %v", tags)
	}
	if _, err := dialOnce("", "127.0.0.1:18080"); err == nil {
		t.Error("port still answers after detach")
	}
}
