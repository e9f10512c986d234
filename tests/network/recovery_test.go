package networktest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"cove/internal/engine/network"
	"cove/internal/engine/network/nft"

	"github.com/vishvananda/netlink"
)

// runChild runs this test binary as a short-lived cove process attaching id.
func (e *env) runChild(role, id, ns, net string, port bool) (string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "COVET_CHILD="+role, "COVET_DIR="+e.dir, "COVET_ID="+id, "COVET_NS="+ns, "COVET_NET="+net)
	if port {
		cmd.Env = append(cmd.Env, "COVET_PORT=1")
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", role, err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// 20 cove processes attaching at once get 20 distinct addresses, and the
// kernel agrees with the state.
func TestNetConcurrentAttachProcesses(t *testing.T) {
	e := newEnv(t)
	if _, err := e.m.Create(network.Config{Name: "covet-c", Subnet: "10.201.5.0/24"}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	nss := make([]string, n)
	for i := range nss {
		nss[i] = newNS(t, fmt.Sprintf("cc%d", i))
	}
	ips := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ips[i], errs[i] = e.runChild("attach", fmt.Sprintf("cc%d", i), nss[i], "covet-c", false)
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range ips {
		if errs[i] != nil {
			t.Errorf("child %d: %v", i, errs[i])
			continue
		}
		if j, dup := seen[ips[i]]; dup {
			t.Errorf("children %d and %d both got %s", i, j, ips[i])
		}
		seen[ips[i]] = i
	}
	as, _ := e.m.Attachments("")
	if len(as) != n {
		t.Fatalf("state has %d attachments, want %d", len(as), n)
	}
	if len(vethsLeft(t)) != n {
		t.Errorf("veths: %v", vethsLeft(t))
	}
	if err := ping(nss[0], ips[n-1]); err != nil {
		t.Error(err)
	}
}

// Attach undoes its work when a step fails, and Repair cleans up after a
// process killed in the middle of Attach.
func TestNetRollbackAndRepair(t *testing.T) {
	fail := ""
	e := newEnv(t, network.WithStepHook(func(s string) error {
		if s == fail {
			return errors.New("injected failure")
		}
		return nil
	}))
	if _, err := e.m.EnsureDefault(); err != nil {
		t.Fatal(err)
	}
	ns := newNS(t, "r1")
	for _, step := range []string{"planned", "network", "veth", "link", "rules"} {
		fail = step
		_, err := e.m.Attach(network.AttachOptions{ContainerID: "r1", NetNSPath: ns,
			Ports: []network.PortMapping{{HostPort: 18400, ContainerPort: 80}}})
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("step %s: err %v", step, err)
		}
		if v := vethsLeft(t); len(v) != 0 {
			t.Errorf("after failure at %s: veths %v", step, v)
		}
		if r := rulesTagged(t, "att:"); len(r) != 0 {
			t.Errorf("after failure at %s: rules %v", step, r)
		}
		if as, _ := e.m.Attachments(""); len(as) != 0 {
			t.Errorf("after failure at %s: attachments %v", step, as)
		}
	}
	fail = ""

	// Crashes: a child killed after creating the veth, and one killed after
	// adding its port rules (before the attachment is recorded).
	ns2 := newNS(t, "r2")
	if _, err := e.runChild("crash-link", "r1", ns, network.DefaultNetwork, false); err == nil {
		t.Fatal("crashing child succeeded")
	}
	if _, err := e.runChild("crash-rules", "r2", ns2, network.DefaultNetwork, true); err == nil {
		t.Fatal("crashing child succeeded")
	}
	if len(vethsLeft(t)) != 2 || len(rulesTagged(t, "att:")) == 0 {
		t.Fatalf("crash did not leave the expected debris: veths %v rules %v", vethsLeft(t), rulesTagged(t, "att:"))
	}
	// A completed attachment whose namespace then disappears (container gone).
	ns3 := newNS(t, "r3")
	if _, err := e.m.Attach(network.AttachOptions{ContainerID: "r3", NetNSPath: ns3,
		Ports: []network.PortMapping{{HostPort: 18401, ContainerPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	if err := deleteNS(ns3); err != nil {
		t.Fatal(err)
	}
	// And a survivor that Repair must keep.
	_, keep := e.attach("r4", network.AttachOptions{Ports: []network.PortMapping{{HostPort: 18402, ContainerPort: 80}}})

	// Debris nothing refers to: a veth and a rule of a container the state never knew.
	la := netlink.NewLinkAttrs()
	la.Name = prefix + "vdeadbeef"
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: prefix + "pdeadbeef"}); err != nil {
		t.Fatal(err)
	}
	c, err := nft.Open(table)
	if err != nil {
		t.Fatal(err)
	}
	ghost, _ := nft.DNAT("att:bridge/ghost", netip.Addr{}, "tcp", 18403, netip.MustParseAddr("10.200.0.99"), 80)
	if err := c.Add([]nft.Rule{ghost}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	rep, err := e.m.Repair()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("repair: %+v", rep)
	if fmt.Sprint(rep.Attachments) != "[bridge/r3]" {
		t.Errorf("repaired attachments %v, want r3's (namespace gone)", rep.Attachments)
	}
	// r1's and r2's veths (crashed) and the ghost's; r2's two rules and the ghost's (r3's go with its attachment).
	if len(rep.Veths) != 3 || !slices.Contains(rep.Veths, prefix+"vdeadbeef") || rep.Rules != 3 {
		t.Errorf("orphans repaired: veths %v, rules %d; want 3 veths and the crashed child's and the ghost's rules", rep.Veths, rep.Rules)
	}
	if v := vethsLeft(t); len(v) != 1 || v[0] != keep.HostVeth {
		t.Errorf("veths after repair: %v, want only %s", v, keep.HostVeth)
	}
	for _, tag := range rulesTagged(t, "att:") {
		if tag != "att:bridge/r4" {
			t.Errorf("stale rule %s after repair", tag)
		}
	}
	if len(rulesTagged(t, "att:bridge/r4")) == 0 {
		t.Error("repair removed the survivor's rules")
	}
	as, _ := e.m.Attachments("")
	if len(as) != 1 || as[0].ContainerID != "r4" {
		t.Errorf("attachments after repair: %v", as)
	}
	// The crashed containers' addresses and port are free again.
	if _, err := e.m.Attach(network.AttachOptions{ContainerID: "r1", NetNSPath: ns,
		Ports: []network.PortMapping{{HostPort: 18500, ContainerPort: 80}}}); err != nil {
		t.Errorf("attach after repair: %v", err)
	}
}

// deleteNS removes a namespace created by newNS before its cleanup runs.
func deleteNS(path string) error {
	return exec.Command("ip", "netns", "delete", path[strings.LastIndexByte(path, '/')+1:]).Run()
}

// Losing the kernel side (bridge and nftables table gone, as after someone
// ran `ip link del` and `nft delete table`): Repair re-creates the bridge
// and rules and puts the surviving container back, published port included.
func TestNetRepairKernelLoss(t *testing.T) {
	e := newEnv(t)
	n, err := e.m.Create(network.Config{Name: "covet-k", Subnet: "10.201.15.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	ns1, _ := e.attach("k1", network.AttachOptions{Network: "covet-k", Ports: []network.PortMapping{{HostPort: 18900, ContainerPort: 80}}})
	_, a2 := e.attach("k2", network.AttachOptions{Network: "covet-k"})
	listenTCP(t, ns1, ":80", "k1")
	if got, err := dialTCP("", "127.0.0.1:18900"); err != nil || got != "k1" {
		t.Fatalf("before: %q %v", got, err)
	}
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(br); err != nil {
		t.Fatal(err)
	}
	c, _ := nft.Open(table)
	c.DeleteTable()
	c.Close()
	if _, err := dialOnce("", "127.0.0.1:18900"); err == nil {
		t.Fatal("port answers without bridge and rules")
	}
	if _, err := e.m.Repair(); err != nil {
		t.Fatal(err)
	}
	if got, err := dialTCP("", "127.0.0.1:18900"); err != nil || got != "k1" {
		t.Errorf("published port after repair: %q %v", got, err)
	}
	if err := ping(ns1, a2.IP); err != nil {
		t.Errorf("containers after repair: %v", err)
	}
}
