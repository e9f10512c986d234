package network

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"cove/internal/engine/network/ipam"
	"cove/internal/engine/network/nft"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Attach connects a container's network namespace to a network: a veth pair
// with the host end on the network's bridge and the container end, named
// IfName, in the namespace; addresses, default route (unless an earlier
// network gave one), loopback up, bandwidth limits and published ports. The default network is created on first use. On error
// everything done so far is undone.
func (m *Manager) Attach(o AttachOptions) (*Attachment, error) {
	if o.ContainerID == "" || strings.ContainsAny(o.ContainerID, "/| \n") {
		return nil, fmt.Errorf("attach: %w: container id %q", ErrInvalidConfig, o.ContainerID)
	}
	if o.NetNSPath == "" {
		return nil, fmt.Errorf("attach %s: %w: no network namespace path", o.ContainerID, ErrInvalidConfig)
	}
	if o.Network == "" {
		o.Network = DefaultNetwork
	}
	st, unlock, err := m.lockedState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	n := st.Networks[o.Network]
	if n == nil && o.Network == DefaultNetwork {
		if n, err = m.create(st, m.defaultConfig()); err != nil {
			return nil, fmt.Errorf("default network: %w", err)
		}
	}
	if n == nil {
		return nil, fmt.Errorf("network %s: %w", o.Network, ErrNotFound)
	}
	if st.attachment(o.ContainerID, n.Name) >= 0 {
		return nil, fmt.Errorf("container %s, network %s: %w", o.ContainerID, n.Name, ErrAttached)
	}
	ns, err := netns.GetFromPath(o.NetNSPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", o.NetNSPath, err)
	}
	defer ns.Close()
	a, err := m.plan(st, n, o)
	if err != nil {
		return nil, err
	}
	// Nothing is recorded before the kernel work: the lock is held until
	// the end, so a crash leaves only a veth and rules no attachment refers
	// to, which Repair removes. Attachments are written without fsync: the
	// kernel objects they describe do not survive a reboot either.
	if n.Driver == DriverCNI {
		err = m.attachCNI(n, a)
	} else {
		err = m.setup(st, n, a, ns)
	}
	if err != nil {
		if terr := m.teardown(a, n); terr != nil {
			return nil, fmt.Errorf("attach %s to %s: %w (rollback: %v)", a.ContainerID, n.Name, err, terr)
		}
		return nil, fmt.Errorf("attach %s to %s: %w", a.ContainerID, n.Name, err)
	}
	st.Attachments = append(st.Attachments, a)
	if err := m.save(st, false); err != nil {
		m.teardown(a, n)
		return nil, err
	}
	c := *a
	return &c, nil
}

// plan validates o and fills in the attachment: interface names, MAC,
// addresses and host ports. Nothing is changed in the kernel.
func (m *Manager) plan(st *state, n *Network, o AttachOptions) (*Attachment, error) {
	a := &Attachment{ContainerID: o.ContainerID, Name: o.Name, Network: n.Name, NetNSPath: o.NetNSPath,
		HostVeth: m.vethName(st, o.ContainerID, n.Name), Gateway: n.Gateway, IPv6Gateway: n.IPv6Gateway,
		Aliases: o.Aliases, Bandwidth: o.Bandwidth, DNS: o.DNS, Created: time.Now().UTC()}
	for _, d := range o.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return nil, fmt.Errorf("dns server %q: %w", d, ErrInvalidConfig)
		}
	}
	a.IfName = o.IfName
	if a.IfName == "" {
		taken := map[string]bool{}
		for _, x := range st.Attachments {
			if x.ContainerID == o.ContainerID {
				taken[x.IfName] = true
			}
		}
		for i := 0; ; i++ {
			if name := fmt.Sprintf("eth%d", i); !taken[name] {
				a.IfName = name
				break
			}
		}
	}
	if len(a.IfName) > 15 || strings.ContainsAny(a.IfName, "/ ") {
		return nil, fmt.Errorf("interface name %q: %w", a.IfName, ErrInvalidConfig)
	}
	if o.MAC != "" {
		hw, err := net.ParseMAC(o.MAC)
		if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
			return nil, fmt.Errorf("mac address %q: %w: want a unicast 48-bit address", o.MAC, ErrInvalidConfig)
		}
		a.MAC = hw.String()
	} else {
		hw := make(net.HardwareAddr, 6)
		rand.Read(hw)
		hw[0] = hw[0]&0xfc | 0x02 // locally administered, unicast
		a.MAC = hw.String()
	}
	if n.Driver == DriverCNI {
		// The plugins create the interface and pick addresses and MAC.
		a.HostVeth, a.Gateway, a.IPv6Gateway = "", "", ""
		if o.MAC == "" {
			a.MAC = ""
		}
		if o.IP != "" || o.IPv6 != "" {
			return nil, fmt.Errorf("network %s (cni): %w: static addresses are up to the plugins' ipam", n.Name, ErrInvalidConfig)
		}
		var err error
		a.Ports, err = resolvePorts(st, n, o.Ports)
		return a, err
	}
	used4, used6 := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, x := range st.Attachments {
		if x.Network != n.Name {
			continue
		}
		if ip, err := netip.ParseAddr(x.IP); err == nil {
			used4[ip] = true
		}
		if ip, err := netip.ParseAddr(x.IPv6); err == nil {
			used6[ip] = true
		}
	}
	pool, err := ipam.ParsePool(n.Subnet, n.IPRange, n.Gateway)
	if err != nil {
		return nil, err
	}
	ip, err := allocate(pool, used4, o.IP)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	a.IP, a.PrefixLen = ip.String(), pool.Subnet.Bits()
	if n.IPv6Subnet != "" {
		p6, err := ipam.ParsePool(n.IPv6Subnet, "", n.IPv6Gateway)
		if err != nil {
			return nil, err
		}
		ip6, err := allocate(p6, used6, o.IPv6)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		a.IPv6 = ip6.String()
	} else if o.IPv6 != "" {
		return nil, fmt.Errorf("network %s has no IPv6 subnet: %w", n.Name, ErrInvalidConfig)
	}
	if a.Ports, err = resolvePorts(st, n, o.Ports); err != nil {
		return nil, err
	}
	return a, nil
}

// vethName derives the host veth name from container and network; on the
// rare clash of 32-bit hashes with another attachment it rehashes, so the
// name never points at someone else's veth (Attach deletes a stale veth of
// the same name before creating its own).
func (m *Manager) vethName(st *state, id, network string) string {
	used := map[string]bool{}
	for _, x := range st.Attachments {
		used[x.HostVeth] = true
	}
	for k := 0; ; k++ {
		seed := id + "\x00" + network
		if k > 0 {
			seed += fmt.Sprintf("\x00%d", k)
		}
		h := sha256.Sum256([]byte(seed))
		if name := m.prefix + "v" + hex.EncodeToString(h[:4]); !used[name] {
			return name
		}
	}
}

func allocate(p ipam.Pool, used map[netip.Addr]bool, want string) (netip.Addr, error) {
	var w netip.Addr
	if want != "" {
		var err error
		if w, err = netip.ParseAddr(want); err != nil {
			return w, fmt.Errorf("address %q: %w", want, ErrInvalidConfig)
		}
	}
	return p.Allocate(used, w)
}

// setup does the kernel work of an attachment, step by step.
func (m *Manager) setup(st *state, n *Network, a *Attachment, ns netns.NsHandle) error {
	if err := m.step("planned"); err != nil {
		return err
	}
	if err := m.ensureNetwork(st, n); err != nil {
		return err
	}
	if err := m.step("network"); err != nil {
		return err
	}
	if err := m.plumb(n, a, ns); err != nil {
		return err
	}
	if err := m.addPortRules(n, a); err != nil {
		return err
	}
	return m.step("rules")
}

// addPortRules publishes a's ports in one nftables transaction.
func (m *Manager) addPortRules(n *Network, a *Attachment) error {
	if len(a.Ports) == 0 {
		return nil
	}
	ip := netip.MustParseAddr(a.IP)
	tag := attTag(a.Network, a.ContainerID)
	rules := []nft.Rule{nft.Hairpin(tag, ip, n.Bridge)}
	for _, p := range a.Ports {
		var hostIP netip.Addr
		if p.HostIP != "" {
			hostIP = netip.MustParseAddr(p.HostIP)
		}
		for i := uint16(0); i < max(p.Range, 1); i++ {
			r, err := nft.DNAT(tag, hostIP, p.Proto, p.HostPort+i, ip, p.ContainerPort+i)
			if err != nil {
				return err
			}
			rules = append(rules, r)
		}
	}
	c, err := nft.Open(m.table)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Add(rules)
}

// teardown removes the kernel side of a: its veth (the peer goes with it)
// and its rules, or runs CNI DEL. Missing pieces are not errors. n is a's
// network, nil if it no longer exists.
func (m *Manager) teardown(a *Attachment, n *Network) error {
	if n != nil && n.Driver == DriverCNI {
		return m.detachCNI(n, a)
	}
	var errs []error
	if l, err := netlink.LinkByName(a.HostVeth); err == nil {
		// The kernel may be deleting it already with the container's namespace.
		if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete veth %s: %w", a.HostVeth, err))
		}
	}
	if a.Bandwidth.EgressBps > 0 {
		if l, err := netlink.LinkByName(m.ifbName(a)); err == nil {
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete ifb %s: %w", l.Attrs().Name, err))
			}
		}
	}
	c, err := nft.Open(m.table)
	if err == nil {
		tag := attTag(a.Network, a.ContainerID)
		_, err = c.DeleteTagged(func(t string) bool { return t == tag })
		c.Close()
	}
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Detach disconnects a container from a network: veth, rules and address
// are released. Detaching what is not attached succeeds.
func (m *Manager) Detach(containerID, network string) error {
	if network == "" {
		network = DefaultNetwork
	}
	st, unlock, err := m.lockedState()
	if err != nil {
		return err
	}
	defer unlock()
	i := st.attachment(containerID, network)
	if i < 0 {
		return nil
	}
	if err := m.teardown(st.Attachments[i], st.Networks[network]); err != nil {
		return fmt.Errorf("detach %s from %s: %w", containerID, network, err)
	}
	st.remove(i)
	return m.save(st, false)
}

// DetachAll disconnects a container from every network (`cove rm`).
func (m *Manager) DetachAll(containerID string) error {
	as, err := m.Attachments(containerID)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range as {
		errs = append(errs, m.Detach(containerID, a.Network))
	}
	return errors.Join(errs...)
}
