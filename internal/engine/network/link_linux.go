package network

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"cove/internal/engine/network/nft"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ensureNetwork makes the kernel side of n exist: bridge with gateway
// addresses, forwarding sysctls, and the network's nftables rules.
// Idempotent, so Attach calls it every time (state survives reboots; the
// kernel side does not).
func (m *Manager) ensureNetwork(st *state, n *Network) error {
	boot := bootID()
	br, err := netlink.LinkByName(n.Bridge)
	if err == nil && boot != "" && n.KernelBoot == boot && br.Attrs().Flags&net.FlagUp != 0 {
		return nil // set up completely earlier in this boot; Repair re-checks
	}
	if err != nil {
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU = n.Bridge, n.MTU
		// A fixed address: a bridge otherwise takes the lowest of its ports'
		// and changes it when that port goes, leaving stale ARP entries for
		// the gateway in every container.
		la.HardwareAddr = bridgeMAC(n.ID)
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		if br, err = netlink.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	for _, gw := range []struct{ subnet, addr string }{{n.Subnet, n.Gateway}, {n.IPv6Subnet, n.IPv6Gateway}} {
		if gw.subnet == "" {
			continue
		}
		addr, err := netlinkAddr(gw.addr, gw.subnet)
		if err != nil {
			return err
		}
		if err := netlink.AddrReplace(br, addr); err != nil {
			return fmt.Errorf("address %s on %s: %w", addr.IPNet, n.Bridge, err)
		}
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(br); err != nil {
			return fmt.Errorf("bridge %s up: %w", n.Bridge, err)
		}
	}
	// route_localnet lets the output-chain DNAT of 127.0.0.1:port leave via the bridge.
	sysctls := map[string]string{
		"net/ipv4/ip_forward":                           "1",
		"net/ipv4/conf/" + n.Bridge + "/route_localnet": "1",
	}
	if n.IPv6Subnet != "" {
		sysctls["net/ipv6/conf/all/forwarding"] = "1"
	}
	for k, v := range sysctls {
		if err := writeSysctl(k, v); err != nil {
			return err
		}
	}
	if err := m.ensureRules(st, n); err != nil {
		return err
	}
	// Other networks' isolation rules toward this one are part of this
	// network's setup too (ensureRules adds both directions).
	n.KernelBoot = boot
	return nil
}

// bootID identifies the running kernel instance ("" if unknown).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// ensureRules adds the network's nftables rules that are missing.
func (m *Manager) ensureRules(st *state, n *Network) error {
	c, err := nft.Open(m.table)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Ensure(); err != nil {
		return err
	}
	have, err := c.List()
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, r := range have {
		present[r.Tag] = true
	}
	var rules []nft.Rule
	if tag := netTag(n.Name); !present[tag] {
		rules = append(rules, nft.LoopbackMasquerade(tag, n.Bridge))
		if n.Internal {
			rules = append(rules, nft.InternalDrops(tag, n.Bridge)...)
		} else {
			for _, s := range []string{n.Subnet, n.IPv6Subnet} {
				if s != "" {
					rules = append(rules, nft.Masquerade(tag, netip.MustParsePrefix(s), n.Bridge))
				}
			}
		}
	}
	for _, o := range st.Networks {
		if o.Name == n.Name || o.Bridge == "" {
			continue
		}
		if tag := isoTag(n.Name, o.Name); !present[tag] {
			rules = append(rules, nft.DropBetween(tag, n.Bridge, o.Bridge), nft.DropBetween(tag, o.Bridge, n.Bridge))
		}
	}
	return c.Add(rules)
}

func writeSysctl(key, val string) error {
	p := "/proc/sys/" + key
	if b, err := os.ReadFile(p); err == nil && string(b) == val+"\n" {
		return nil
	}
	if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, val, err)
	}
	return nil
}

// netlinkAddr builds addr/prefixlen-of-subnet; IPv6 addresses skip DAD.
func netlinkAddr(addr, subnet string) (*netlink.Addr, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return nil, fmt.Errorf("subnet %q: %w", subnet, err)
	}
	na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}}
	if a.Is6() {
		na.Flags = unix.IFA_F_NODAD
	}
	return na, nil
}

// plumb creates the veth pair for a and configures the container end inside ns.
func (m *Manager) plumb(n *Network, a *Attachment, ns netns.NsHandle) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	mac, err := net.ParseMAC(a.MAC)
	if err != nil {
		return fmt.Errorf("mac %q: %w", a.MAC, err)
	}
	spec := vethSpec{Host: a.HostVeth, Master: br.Attrs().Index, MTU: n.MTU, Peer: a.IfName, PeerMAC: mac, PeerNSFd: int(ns)}
	if err := createVeth(spec); errors.Is(err, unix.EEXIST) {
		// Left by a crashed attach of the same container to the same
		// network (or the container already has an interface of that name).
		if old, lerr := netlink.LinkByName(a.HostVeth); lerr == nil {
			netlink.LinkDel(old)
			err = createVeth(spec)
		}
		if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := m.step("veth"); err != nil {
		return err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", a.NetNSPath, err)
	}
	defer h.Close()
	cl, err := h.LinkByName(a.IfName)
	if err != nil {
		return fmt.Errorf("veth peer %s in %s: %w", a.IfName, a.NetNSPath, err)
	}
	if err := h.LinkSetUp(cl); err != nil {
		return fmt.Errorf("%s up: %w", a.IfName, err)
	}
	addrs := [][2]string{{a.IP, n.Subnet}}
	if a.IPv6 != "" {
		addrs = append(addrs, [2]string{a.IPv6, n.IPv6Subnet})
	}
	for _, ad := range addrs {
		na, err := netlinkAddr(ad[0], ad[1])
		if err != nil {
			return err
		}
		if err := h.AddrAdd(cl, na); err != nil {
			return fmt.Errorf("address %s on %s: %w", na.IPNet, a.IfName, err)
		}
	}
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}} // lo is ifindex 1 in every namespace
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	gws := []string{a.Gateway}
	if a.IPv6Gateway != "" {
		gws = append(gws, a.IPv6Gateway)
	}
	for _, g := range gws {
		gw := net.ParseIP(g)
		r := &netlink.Route{LinkIndex: cl.Attrs().Index, Gw: gw}
		if err := h.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			// A second network does not replace the first one's default route.
			return fmt.Errorf("default route via %s: %w", g, err)
		}
	}
	if a.Bandwidth == (Bandwidth{}) && len(a.Ports) == 0 {
		return m.step("link")
	}
	hl, err := netlink.LinkByName(a.HostVeth)
	if err != nil {
		return fmt.Errorf("veth %s: %w", a.HostVeth, err)
	}
	if err := m.shape(nil, hl, a.Bandwidth.IngressBps); err != nil {
		return fmt.Errorf("ingress limit: %w", err)
	}
	if err := m.limitEgress(a, hl); err != nil {
		return fmt.Errorf("egress limit: %w", err)
	}
	if len(a.Ports) > 0 {
		// A container reaching its own published port through a host address
		// is DNAT-ed back out of the port it came in on (br_netfilter bridges it).
		if err := netlink.LinkSetHairpin(hl, true); err != nil {
			return fmt.Errorf("hairpin on %s: %w", a.HostVeth, err)
		}
	}
	return m.step("link")
}

// shape puts a token bucket filter as root qdisc of link (traffic leaving
// it) when bps > 0. h nil means the host namespace.
func (m *Manager) shape(h *netlink.Handle, link netlink.Link, bps uint64) error {
	if bps == 0 {
		return nil
	}
	// Burst: 10 ms worth of data, at least 64 KiB (GSO segments are large);
	// queue: 50 ms worth beyond the burst.
	burst := max(bps/100, 64<<10)
	limit := burst + bps/20
	q := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       bps,
		Buffer:     netlink.Xmittime(bps, uint32(burst)),
		Limit:      uint32(min(limit, 1<<31)),
	}
	var err error
	if h == nil {
		err = netlink.QdiscReplace(q)
	} else {
		err = h.QdiscReplace(q)
	}
	if err != nil {
		return fmt.Errorf("tbf on %s (%d B/s): %w", link.Attrs().Name, bps, err)
	}
	return nil
}

// ifbName is the name of the IFB device shaping a's egress.
func (m *Manager) ifbName(a *Attachment) string {
	return m.prefix + "i" + a.HostVeth[len(m.prefix)+1:]
}

// limitEgress shapes what the container sends, on the host side where the
// container cannot lift it even with CAP_NET_ADMIN: traffic entering the
// host veth is redirected to an IFB device whose tbf qdisc does the shaping
// (shaping queues, where policing on ingress would drop and upset TCP).
func (m *Manager) limitEgress(a *Attachment, hostVeth netlink.Link) error {
	if a.Bandwidth.EgressBps == 0 {
		return nil
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.Flags = m.ifbName(a), net.FlagUp
	ifb := &netlink.Ifb{LinkAttrs: la}
	if err := netlink.LinkAdd(ifb); err != nil {
		return fmt.Errorf("create ifb %s: %w", la.Name, err)
	}
	if err := netlink.LinkSetUp(ifb); err != nil {
		return fmt.Errorf("ifb %s up: %w", la.Name, err)
	}
	if err := m.shape(nil, ifb, a.Bandwidth.EgressBps); err != nil {
		return err
	}
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: hostVeth.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}}
	if err := netlink.QdiscAdd(ingress); err != nil {
		return fmt.Errorf("ingress qdisc on %s: %w", a.HostVeth, err)
	}
	// A u32 filter matching everything (cls_matchall is not built into every kernel).
	redirect := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: hostVeth.Attrs().Index, Parent: netlink.MakeHandle(0xffff, 0),
			Priority: 1, Protocol: unix.ETH_P_ALL},
		Sel:     &netlink.TcU32Sel{Flags: nl.TC_U32_TERMINAL, Nkeys: 1, Keys: []netlink.TcU32Key{{Mask: 0, Val: 0, Off: 0}}},
		Actions: []netlink.Action{netlink.NewMirredAction(ifb.Attrs().Index)},
	}
	if err := netlink.FilterAdd(redirect); err != nil {
		return fmt.Errorf("redirect %s to %s: %w", a.HostVeth, la.Name, err)
	}
	return nil
}

// LoopbackUp brings lo up in the network namespace at nsPath: all that
// --network none needs.
func LoopbackUp(nsPath string) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo in %s: %w", nsPath, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up in %s: %w", nsPath, err)
	}
	return nil
}

// bridgeMAC derives a locally administered unicast address from a network id.
func bridgeMAC(id string) net.HardwareAddr {
	b, err := hex.DecodeString(id[:12])
	if err != nil || len(b) != 6 {
		b = []byte{0, 0xc0, 0xe0, 0, 0, 1}
	}
	b[0] = b[0]&0xfc | 0x02
	return net.HardwareAddr(b)
}
