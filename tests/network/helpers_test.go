// Package networktest drives internal/engine/network end to end with real
// network namespaces, veths, bridges and nftables rules. Root only; every
// kernel object it creates carries the prefix "covet" and the nftables
// table is "covet", removed at the end: other users' rules are never touched.
package networktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"cove/internal/engine/network"
	"cove/internal/engine/network/nft"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const (
	prefix = "covet"
	table  = "covet"
	// Subnet of the test default network; others are picked per test from 10.201-10.209.
	defaultSubnet = "10.200.0.0/16"
	// The outside namespace: a veth from the host (.1) to it (.2).
	outsideNet  = "10.210.0.0/30"
	outsideHost = "10.210.0.1"
	outsideIP   = "10.210.0.2"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root (real network namespaces, bridges and nftables)")
	}
}

// env is one test's manager plus everything to clean up.
type env struct {
	t   testing.TB
	m   *network.Manager
	dir string
}

func newEnv(t testing.TB, opts ...network.Option) *env {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	m, err := network.Open(dir, append([]network.Option{network.WithPrefix(prefix), network.WithTable(table),
		network.WithDefaultSubnet(defaultSubnet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, m: m, dir: dir}
	t.Cleanup(e.cleanup)
	return e
}

// cleanup detaches everything, removes the networks and the test table, and
// deletes any leftover link with the test prefix.
func (e *env) cleanup() {
	as, _ := e.m.Attachments("")
	for _, a := range as {
		if err := e.m.Detach(a.ContainerID, a.Network); err != nil {
			e.t.Errorf("cleanup detach: %v", err)
		}
	}
	nets, _ := e.m.List()
	for _, n := range nets {
		if err := e.m.Remove(n.Name); err != nil {
			e.t.Errorf("cleanup remove %s: %v", n.Name, err)
		}
	}
	if c, err := nft.Open(table); err == nil {
		c.DeleteTable()
		c.Close()
	}
	links, _ := netlink.LinkList()
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix) {
			netlink.LinkDel(l)
		}
	}
}

// newNS creates a named network namespace /run/netns/covet-NAME, removed at cleanup.
func newNS(t testing.TB, name string) string {
	t.Helper()
	name = prefix + "-" + name
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	netns.DeleteNamed(name) // leftover of an interrupted run
	ns, err := netns.NewNamed(name)
	if err != nil {
		netns.Set(orig)
		t.Fatalf("new netns %s: %v", name, err)
	}
	ns.Close()
	if err := netns.Set(orig); err != nil {
		panic(err) // this thread is in the wrong namespace; LockOSThread makes it die with us
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return filepath.Join("/run/netns", name)
}

// inNS runs fn on a thread inside the namespace at path; sockets fn opens
// stay in that namespace.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// listenTCP starts a TCP server in ns that greets every connection with greeting.
func listenTCP(t testing.TB, ns, addr, greeting string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := inNS(ns, func() (err error) { l, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				c.Write([]byte(greeting))
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l
}

// listenUDP starts a UDP server in ns answering every datagram with greeting.
func listenUDP(t testing.TB, ns, addr, greeting string) {
	t.Helper()
	var pc net.PacketConn
	if err := inNS(ns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatalf("listen udp %s in %s: %v", addr, ns, err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(greeting), from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
}

// dialTCP connects from ns ("" = host) to addr and returns what the server
// says first. For checks that must succeed: a timed-out attempt is retried
// (neighbour resolution on a loaded machine can outlast one attempt).
func dialTCP(ns, addr string) (string, error) {
	var out string
	var err error
	for try := 0; try < 3; try++ {
		out, err = dialOnce(ns, addr)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			break
		}
	}
	return out, err
}

// dialOnce is one connection attempt of dialTCP, for checks that must fail.
func dialOnce(ns, addr string) (string, error) {
	var out string
	do := func() error {
		c, err := net.DialTimeout("tcp", addr, 700*time.Millisecond)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 64)
		n, err := c.Read(b)
		out = string(b[:n])
		if n > 0 {
			return nil
		}
		return err
	}
	if ns == "" {
		return out, do()
	}
	return out, inNS(ns, do)
}

// dialUDP sends a datagram from ns ("" = host) to addr and returns the answer.
func dialUDP(ns, addr string) (string, error) {
	var out string
	do := func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, 64)
		for try := 0; try < 3; try++ {
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, err := c.Read(b)
			if err == nil {
				out = string(b[:n])
				return nil
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
		}
		return fmt.Errorf("udp %s: no answer", addr)
	}
	if ns == "" {
		return out, do()
	}
	return out, inNS(ns, do)
}

// ping checks that ip answers an ICMP echo from ns (retrying a lost one).
func ping(ns, ip string) error {
	var err error
	for try := 0; try < 3; try++ {
		if err = pingOnce(ns, ip); err == nil {
			return nil
		}
	}
	return err
}

// pingOnce sends one ICMP echo from ns with busybox ping (for checks that must fail).
func pingOnce(ns, ip string) error {
	args := []string{"netns", "exec", filepath.Base(ns), "busybox", "ping", "-c", "1", "-W", "1", ip}
	if strings.Contains(ip, ":") {
		args = []string{"netns", "exec", filepath.Base(ns), "busybox", "ping6", "-c", "1", "-W", "1", ip}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v: %s", ip, ns, err, out)
	}
	return nil
}

// outside creates the "outside world": a namespace reachable from the host
// through a veth, host end outsideHost, namespace end outsideIP.
func outside(t testing.TB) string {
	t.Helper()
	ns := newNS(t, "out")
	h, err := netns.GetFromPath(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	la := netlink.NewLinkAttrs()
	la.Name = prefix + "oh"
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: prefix + "op", PeerNamespace: netlink.NsFd(int(h))}); err != nil {
		t.Fatalf("outside veth: %v", err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(prefix + "oh"); err == nil {
			netlink.LinkDel(l)
		}
	})
	host, _ := netlink.LinkByName(prefix + "oh")
	addr, _ := netlink.ParseAddr(outsideHost + "/30")
	if err := netlink.AddrAdd(host, addr); err != nil {
		t.Fatal(err)
	}
	netlink.LinkSetUp(host)
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	peer, err := nh.LinkByName(prefix + "op")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ = netlink.ParseAddr(outsideIP + "/30")
	nh.AddrAdd(peer, addr)
	nh.LinkSetUp(peer)
	if lo, err := nh.LinkByName("lo"); err == nil {
		nh.LinkSetUp(lo)
	}
	return ns
}

// vethsLeft lists host links with the test's veth prefix.
func vethsLeft(t testing.TB) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, prefix+"v") {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// rulesTagged lists the tags of the test table's rules starting with p.
func rulesTagged(t testing.TB, p string) []string {
	t.Helper()
	c, err := nft.Open(table)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rules, err := c.List()
	if err != nil {
		return nil // no table
	}
	var out []string
	for _, r := range rules {
		if strings.HasPrefix(r.Tag, p) {
			out = append(out, r.Tag)
		}
	}
	return out
}

// attach attaches a container with a fresh namespace; returns the namespace path.
func (e *env) attach(id string, o network.AttachOptions) (string, *network.Attachment) {
	e.t.Helper()
	ns := newNS(e.t, id)
	o.ContainerID, o.NetNSPath = id, ns
	a, err := e.m.Attach(o)
	if err != nil {
		e.t.Fatalf("attach %s: %v", id, err)
	}
	return ns, a
}

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}
