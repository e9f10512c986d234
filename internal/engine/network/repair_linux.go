package network

import (
	"errors"
	"fmt"
	"strings"

	"cove/internal/engine/network/nft"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RepairReport lists what Repair removed.
type RepairReport struct {
	Attachments []string // "network/container" of attachments whose namespace is gone
	Veths       []string // veths (and IFB devices) no attachment refers to
	Rules       int      // nftables rules no network or attachment refers to
}

// Repair cleans up after crashes (`cove system check`): attachments whose
// network namespace is gone, veths with cove's prefix that no attachment
// refers to (a cove process died mid-attach) and rules tagged for networks
// or attachments that no longer exist. It then re-creates missing kernel
// pieces of the networks.
func (m *Manager) Repair() (*RepairReport, error) {
	st, unlock, err := m.lockedState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	rep := &RepairReport{}
	var errs []error
	kept := st.Attachments[:0]
	for _, a := range st.Attachments {
		if !netnsGone(a.NetNSPath) && st.Networks[a.Network] != nil {
			kept = append(kept, a)
			continue
		}
		if err := m.teardown(a, st.Networks[a.Network]); err != nil {
			errs = append(errs, err)
			kept = append(kept, a)
			continue
		}
		rep.Attachments = append(rep.Attachments, a.Network+"/"+a.ContainerID)
	}
	st.Attachments = kept
	if err := m.save(st, false); err != nil {
		return rep, err
	}

	veths := map[string]bool{}
	for _, a := range st.Attachments {
		veths[a.HostVeth] = true
		if a.HostVeth != "" {
			veths[m.ifbName(a)] = true
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return rep, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		name := l.Attrs().Name
		ours := (l.Type() == "veth" && strings.HasPrefix(name, m.prefix+"v")) || (l.Type() == "ifb" && strings.HasPrefix(name, m.prefix+"i"))
		if !ours || len(name) != len(m.prefix)+9 || veths[name] {
			continue
		}
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete orphan veth %s: %w", name, err))
			continue
		}
		rep.Veths = append(rep.Veths, name)
	}

	c, err := nft.Open(m.table)
	if err != nil {
		return rep, err
	}
	defer c.Close()
	live := map[string]bool{}
	for name := range st.Networks {
		live[netTag(name)] = true
		for other := range st.Networks {
			if other != name {
				live[isoTag(name, other)] = true
			}
		}
	}
	for _, a := range st.Attachments {
		live[attTag(a.Network, a.ContainerID)] = true
	}
	n, err := c.DeleteTagged(func(t string) bool { return !live[t] })
	if err != nil {
		errs = append(errs, err)
	}
	rep.Rules = n
	for _, nw := range st.Networks {
		if nw.Driver == DriverCNI {
			continue
		}
		nw.KernelBoot = ""
		if err := m.ensureNetwork(st, nw); err != nil {
			errs = append(errs, err)
		}
	}
	// Surviving attachments: back on their bridge (a re-created bridge has
	// no ports) and their published ports present.
	have, err := c.List()
	if err != nil {
		errs = append(errs, err)
	}
	tags := map[string]bool{}
	for _, r := range have {
		tags[r.Tag] = true
	}
	for _, a := range st.Attachments {
		n := st.Networks[a.Network]
		if n == nil || n.Driver == DriverCNI {
			continue
		}
		if err := reattach(n, a); err != nil {
			errs = append(errs, err)
		}
		if len(a.Ports) > 0 && !tags[attTag(a.Network, a.ContainerID)] {
			if err := m.addPortRules(n, a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := m.save(st, true); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// netnsGone reports whether path no longer names a network namespace (the
// process exited, or the bind mount was removed).
func netnsGone(path string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return true
	}
	return fs.Type != unix.NSFS_MAGIC
}

// reattach puts a's host veth back on its network's bridge if it is not.
func reattach(n *Network, a *Attachment) error {
	l, err := netlink.LinkByName(a.HostVeth)
	if err != nil {
		return nil // gone with its namespace; nothing to put back
	}
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if l.Attrs().MasterIndex == br.Attrs().Index {
		return nil
	}
	if err := netlink.LinkSetMaster(l, br); err != nil {
		return fmt.Errorf("put %s back on %s: %w", a.HostVeth, n.Bridge, err)
	}
	if len(a.Ports) > 0 {
		netlink.LinkSetHairpin(l, true)
	}
	return nil
}
