package networktest

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"cove/internal/engine/network"
	"cove/internal/engine/network/nft"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestMain runs the child-process role used by the concurrency and crash
// tests. The library turns on net.ipv4.ip_forward (and IPv6 forwarding for
// dual-stack networks) as Docker and Podman do; the tests leave it on:
// turning it off afterwards could break other engines' tests running at
// the same time (dockerd sets it once at start).
func TestMain(m *testing.M) {
	if os.Getenv("COVET_CHILD") != "" {
		os.Exit(child())
	}
	if os.Getuid() == 0 {
		sweep()
	}
	os.Exit(m.Run())
}

// sweep removes what an interrupted earlier run may have left: namespaces,
// links and the nftables table of the tests (all named covet*), nothing else.
func sweep() {
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix+"-") {
				netns.DeleteNamed(e.Name())
			}
		}
	}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, prefix) {
				netlink.LinkDel(l)
			}
		}
	}
	if c, err := nft.Open(table); err == nil {
		c.DeleteTable()
		c.Close()
	}
}

// child attaches one container in a separate process: COVET_CHILD=attach
// prints the address; COVET_CHILD=crash-STEP kills itself with SIGKILL
// right after Attach's step STEP, as a crash of `cove run` would.
func child() int {
	role := os.Getenv("COVET_CHILD")
	var opts []network.Option
	opts = append(opts, network.WithPrefix(prefix), network.WithTable(table), network.WithDefaultSubnet(defaultSubnet))
	if step, ok := strings.CutPrefix(role, "crash-"); ok {
		opts = append(opts, network.WithStepHook(func(s string) error {
			if s == step {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			return nil
		}))
	}
	m, err := network.Open(os.Getenv("COVET_DIR"), opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	o := network.AttachOptions{ContainerID: os.Getenv("COVET_ID"), NetNSPath: os.Getenv("COVET_NS"), Network: os.Getenv("COVET_NET")}
	if os.Getenv("COVET_PORT") != "" {
		o.Ports = []network.PortMapping{{HostPort: 18500, ContainerPort: 80}}
	}
	a, err := m.Attach(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(a.IP)
	return 0
}
