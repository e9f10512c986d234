package networktest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"cove/internal/engine/network"
	"cove/internal/engine/network/dns"

	"golang.org/x/net/dns/dnsmessage"
)

// askDNS sends one query from inside ns to server and returns the addresses.
func askDNS(t *testing.T, ns, server, name string, typ dnsmessage.Type, tcp bool) (dnsmessage.RCode, []netip.Addr) {
	t.Helper()
	q, err := dns.Query(7, name, typ)
	if err != nil {
		t.Fatal(err)
	}
	var resp []byte
	err = inNS(ns, func() error {
		proto := "udp"
		if tcp {
			proto = "tcp"
		}
		c, err := net.DialTimeout(proto, net.JoinHostPort(server, "53"), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		msg := q
		if tcp {
			msg = append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)
		}
		if _, err := c.Write(msg); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		resp = buf[:n]
		if tcp {
			resp = resp[2:]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("query %s from %s: %v", name, ns, err)
	}
	rc, addrs, err := dns.Answers(resp)
	if err != nil {
		t.Fatal(err)
	}
	return rc, addrs
}

// Containers on a user network resolve each other by name and alias through
// the network's DNS responder on the gateway; other names are forwarded.
func TestNetDNS(t *testing.T) {
	e := newEnv(t)
	n, err := e.m.Create(network.Config{Name: "covet-dns", Subnet: "10.201.6.0/24", IPv6Subnet: "fd00:c0fe:6::/64"})
	if err != nil {
		t.Fatal(err)
	}
	// An upstream resolver on the host's loopback standing in for the host's.
	up := &dns.Server{Lookup: func(name string) ([]netip.Addr, bool) {
		if name == "example.test" {
			return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, true
		}
		return nil, false
	}}
	upPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upL, err := net.Listen("tcp", upPC.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- up.ServeConns(ctx, upPC, upL) }()
	_, web := e.attach("web1", network.AttachOptions{Network: "covet-dns", Name: "web", Aliases: []string{"www", "frontend"}})
	nsDB, _ := e.attach("db1", network.AttachOptions{Network: "covet-dns", Name: "db"})
	go func() {
		done <- e.m.Serve(ctx, "covet-dns", network.ServeOptions{Upstreams: []string{upPC.LocalAddr().String()}})
	}()
	defer func() { cancel(); <-done; <-done }()
	time.Sleep(100 * time.Millisecond) // let Serve bind

	for _, tcp := range []bool{false, true} {
		for _, name := range []string{"web", "www", "FRONTEND."} {
			rc, a := askDNS(t, nsDB, n.Gateway, name, dnsmessage.TypeA, tcp)
			if rc != dnsmessage.RCodeSuccess || len(a) != 1 || a[0].String() != web.IP {
				t.Errorf("tcp=%v %s A: %v %v, want %s", tcp, name, rc, a, web.IP)
			}
		}
		if _, a := askDNS(t, nsDB, n.Gateway, "web", dnsmessage.TypeAAAA, tcp); len(a) != 1 || a[0].String() != web.IPv6 {
			t.Errorf("tcp=%v web AAAA: %v, want %s", tcp, a, web.IPv6)
		}
		if _, a := askDNS(t, nsDB, n.Gateway, "example.test", dnsmessage.TypeA, tcp); len(a) != 1 || a[0].String() != "192.0.2.7" {
			t.Errorf("tcp=%v forwarded: %v", tcp, a)
		}
	}
	// A container started with --dns has its other queries forwarded there.
	up2 := &dns.Server{Lookup: func(name string) ([]netip.Addr, bool) {
		return []netip.Addr{netip.MustParseAddr("192.0.2.8")}, name == "example.test"
	}}
	pc2, err := net.ListenPacket("udp", "127.77.0.1:53")
	if err != nil {
		t.Fatalf("second upstream: %v", err)
	}
	go up2.ServeConns(ctx, pc2, nil)
	nsCustom, _ := e.attach("custom1", network.AttachOptions{Network: "covet-dns", Name: "custom", DNS: []string{"127.77.0.1"}})
	if _, a := askDNS(t, nsCustom, n.Gateway, "example.test", dnsmessage.TypeA, false); len(a) != 1 || a[0].String() != "192.0.2.8" {
		t.Errorf("--dns upstream: %v, want 192.0.2.8", a)
	}
	if _, a := askDNS(t, nsCustom, n.Gateway, "web", dnsmessage.TypeA, false); len(a) != 1 || a[0].String() != web.IP {
		t.Errorf("--dns container resolving a name on its network: %v", a)
	}

	// Names follow the state: a container attached later resolves, a detached one no longer.
	_, late := e.attach("late1", network.AttachOptions{Network: "covet-dns", Name: "late"})
	if _, a := askDNS(t, nsDB, n.Gateway, "late", dnsmessage.TypeA, false); len(a) != 1 || a[0].String() != late.IP {
		t.Errorf("late container: %v", a)
	}
	if err := e.m.Detach("web1", "covet-dns"); err != nil {
		t.Fatal(err)
	}
	if rc, a := askDNS(t, nsDB, n.Gateway, "www", dnsmessage.TypeA, false); len(a) != 0 {
		t.Errorf("detached alias still resolves: %v %v", rc, a)
	}
	if err := e.m.Serve(ctx, network.DefaultNetwork, network.ServeOptions{}); err == nil {
		t.Error("Serve on the default network should be refused")
	}
}

// The generated files of a container on a user network point at the
// embedded DNS; on the default network at the host's resolvers.
func TestNetGeneratedFiles(t *testing.T) {
	hostResolv := []byte("nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.test\noptions ndots:2\n")
	user, err := network.ResolvConf(network.ResolvOptions{Host: hostResolv, EmbeddedDNS: "10.201.6.1", Options: []string{"timeout:1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "# Generated by cove\nnameserver 10.201.6.1\nsearch corp.test\noptions timeout:1\n"
	if string(user) != want {
		t.Errorf("user network resolv.conf:\n%s\nwant\n%s", user, want)
	}
	def, _ := network.ResolvConf(network.ResolvOptions{Host: hostResolv, Search: []string{"a.test", "b.test"}})
	if want := "# Generated by cove\nnameserver 192.0.2.53\nsearch a.test b.test\noptions ndots:2\n"; string(def) != want {
		t.Errorf("default network resolv.conf:\n%s\nwant\n%s", def, want)
	}
	if _, err := network.ResolvConf(network.ResolvOptions{DNS: []string{"not-an-ip"}}); err == nil {
		t.Error("bad --dns accepted")
	}
	hosts, err := network.HostsFile(network.HostsOptions{Hostname: "web", Attachments: []network.Attachment{{IP: "10.201.6.2"}},
		ExtraHosts: []string{"db.test:192.0.2.9", "v6:[fd00::9]"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"127.0.0.1\tlocalhost\n", "192.0.2.9\tdb.test\n", "fd00::9\tv6\n", "10.201.6.2\tweb\n"} {
		if !contains(hosts, line) {
			t.Errorf("hosts lacks %q:\n%s", line, hosts)
		}
	}
	if _, err := network.HostsFile(network.HostsOptions{ExtraHosts: []string{"nocolon"}}); err == nil {
		t.Error("bad --add-host accepted")
	}
	if string(network.HostnameFile("web")) != "web\n" {
		t.Error("hostname file")
	}
	for in, want := range map[string]network.ModeKind{"": network.ModeBridge, "none": network.ModeNone, "host": network.ModeHost,
		"container:abc": network.ModeContainer, "ns:/run/netns/x": network.ModeNS, "mynet": network.ModeBridge} {
		if m, err := network.ParseMode(in); err != nil || m.Kind != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, m, err)
		}
	}
	for _, bad := range []string{"ns:relative", "container:", "bad name"} {
		if _, err := network.ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
