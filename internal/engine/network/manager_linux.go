package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"time"

	"cove/internal/engine/network/ipam"
	"cove/internal/engine/network/nft"

	"github.com/vishvananda/netlink"
)

// Manager manages the networks stored under one directory.
type Manager struct {
	dir           string
	cniPath       []string
	prefix        string
	table         string
	defaultSubnet string
	hook          func(step string) error
}

// Option configures a Manager.
type Option func(*Manager)

// WithPrefix sets the prefix of bridge and veth names (default "cove").
// Names must stay within 15 bytes: use at most 6 characters.
func WithPrefix(p string) Option { return func(m *Manager) { m.prefix = p } }

// WithTable sets the nftables table name (default "cove").
func WithTable(t string) Option { return func(m *Manager) { m.table = t } }

// WithDefaultSubnet sets the subnet of the default network (default 10.89.0.0/16).
func WithDefaultSubnet(s string) Option { return func(m *Manager) { m.defaultSubnet = s } }

// WithStepHook calls hook after each step of Attach ("recorded", "network",
// "veth", "link", "rules"); an error from it fails the attach there. For
// tests of rollback and crash recovery.
func WithStepHook(hook func(step string) error) Option { return func(m *Manager) { m.hook = hook } }

// Open returns a Manager whose state lives in dir (created if missing).
func Open(dir string, opts ...Option) (*Manager, error) {
	m := &Manager{dir: dir, prefix: "cove", table: "cove", defaultSubnet: "10.89.0.0/16"}
	for _, o := range opts {
		o(m)
	}
	if len(m.prefix) == 0 || len(m.prefix) > 6 {
		return nil, fmt.Errorf("interface prefix %q: want 1 to 6 characters", m.prefix)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("network state directory: %w", err)
	}
	return m, nil
}

// Table is the nftables table (inet family) this Manager owns.
func (m *Manager) Table() string { return m.table }

func (m *Manager) step(name string) error {
	if m.hook == nil {
		return nil
	}
	if err := m.hook(name); err != nil {
		return fmt.Errorf("step %s: %w", name, err)
	}
	return nil
}

// Create creates a network: validates it, records it and sets up its bridge
// and nftables rules.
func (m *Manager) Create(cfg Config) (*Network, error) {
	st, unlock, err := m.lockedState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	n, err := m.create(st, cfg)
	if err != nil {
		return nil, err
	}
	c := *n
	return &c, nil
}

// EnsureDefault creates the default network if it does not exist yet.
func (m *Manager) EnsureDefault() (*Network, error) {
	st, unlock, err := m.lockedState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if n := st.Networks[DefaultNetwork]; n != nil {
		c := *n
		return &c, nil
	}
	n, err := m.create(st, m.defaultConfig())
	if err != nil {
		return nil, err
	}
	c := *n
	return &c, nil
}

func (m *Manager) defaultConfig() Config {
	return Config{Name: DefaultNetwork, Subnet: m.defaultSubnet, Bridge: m.prefix + "0"}
}

// create validates cfg against st, saves it and sets up the kernel side.
// Preconditions: the lock is held.
func (m *Manager) create(st *state, cfg Config) (*Network, error) {
	n, err := m.validate(st, cfg)
	if err != nil {
		return nil, err
	}
	st.Networks[n.Name] = n
	if err := m.save(st, true); err != nil {
		return nil, err
	}
	if n.Driver == DriverCNI {
		return n, nil
	}
	if err := m.ensureNetwork(st, n); err != nil {
		m.destroyNetwork(n)
		delete(st.Networks, n.Name)
		if serr := m.save(st, true); serr != nil {
			return nil, fmt.Errorf("%w (and rolling back: %v)", err, serr)
		}
		return nil, err
	}
	return n, nil
}

// validate turns cfg into a Network, checking names, subnets and overlaps.
func (m *Manager) validate(st *state, cfg Config) (*Network, error) {
	if !nameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("network name %q: %w: want letters, digits, _ . - (at most 64)", cfg.Name, ErrInvalidConfig)
	}
	if st.Networks[cfg.Name] != nil {
		return nil, fmt.Errorf("network %s: %w", cfg.Name, ErrExists)
	}
	if cfg.Driver == DriverCNI {
		_, b, err := cniList(cfg.Name, cfg.CNIConfList)
		if err != nil {
			return nil, err
		}
		return &Network{Name: cfg.Name, ID: newID(), Driver: DriverCNI, CNIConfList: b, Labels: cfg.Labels, Created: time.Now().UTC()}, nil
	}
	if cfg.Driver != "" && cfg.Driver != "bridge" {
		return nil, fmt.Errorf("driver %q: %w: want bridge or cni", cfg.Driver, ErrInvalidConfig)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.MTU < 1280 || cfg.MTU > 65535 {
		return nil, fmt.Errorf("mtu %d: %w: want 1280..65535", cfg.MTU, ErrInvalidConfig)
	}
	n := &Network{Name: cfg.Name, ID: newID(), Driver: "bridge", Internal: cfg.Internal,
		MTU: cfg.MTU, DNS: cfg.Name != DefaultNetwork, Labels: cfg.Labels, Created: time.Now().UTC()}
	n.Bridge = cfg.Bridge
	if n.Bridge == "" {
		n.Bridge = m.prefix + "-" + n.ID[:8]
	}
	if len(n.Bridge) > 15 {
		return nil, fmt.Errorf("bridge name %q: %w: longer than 15 bytes", n.Bridge, ErrInvalidConfig)
	}
	for _, o := range st.Networks {
		if o.Bridge == n.Bridge {
			return nil, fmt.Errorf("bridge %s: %w: used by network %s", n.Bridge, ErrInvalidConfig, o.Name)
		}
	}
	// Never adopt someone else's interface (docker0, a libvirt bridge); the
	// default network may take over a cove0 bridge left by an earlier state.
	if l, err := netlink.LinkByName(n.Bridge); err == nil && !(cfg.Name == DefaultNetwork && l.Type() == "bridge") {
		return nil, fmt.Errorf("bridge name %s: %w: a %s interface of that name exists on the host", n.Bridge, ErrInvalidConfig, l.Type())
	}
	subnet := cfg.Subnet
	if subnet == "" {
		s, err := m.freeSubnet(st)
		if err != nil {
			return nil, err
		}
		subnet = s
	}
	p4, err := ipam.ParsePool(subnet, cfg.IPRange, cfg.Gateway)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if !p4.Subnet.Addr().Is4() {
		return nil, fmt.Errorf("subnet %s: %w: not IPv4 (use the IPv6 subnet field)", subnet, ErrInvalidConfig)
	}
	if err := m.checkOverlap(st, p4.Subnet); err != nil {
		return nil, err
	}
	n.Subnet, n.Gateway = p4.Subnet.String(), p4.Gateway.String()
	if p4.Range.IsValid() {
		n.IPRange = p4.Range.String()
	}
	if cfg.IPv6Subnet != "" {
		p6, err := ipam.ParsePool(cfg.IPv6Subnet, "", cfg.IPv6Gateway)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		if !p6.Subnet.Addr().Is6() || p6.Subnet.Addr().Is4In6() {
			return nil, fmt.Errorf("ipv6 subnet %s: %w: not IPv6", cfg.IPv6Subnet, ErrInvalidConfig)
		}
		if err := m.checkOverlap(st, p6.Subnet); err != nil {
			return nil, err
		}
		n.IPv6Subnet, n.IPv6Gateway = p6.Subnet.String(), p6.Gateway.String()
	}
	return n, nil
}

// newID returns 64 random hex digits.
func newID() string {
	id := make([]byte, 32)
	rand.Read(id) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(id)
}

// checkOverlap refuses a subnet overlapping another cove network's or a host
// route that does not go through a cove bridge.
func (m *Manager) checkOverlap(st *state, p netip.Prefix) error {
	for _, o := range st.Networks {
		for _, s := range []string{o.Subnet, o.IPv6Subnet} {
			if q, err := netip.ParsePrefix(s); err == nil && q.Overlaps(p) {
				return fmt.Errorf("subnet %s: %w network %s (%s)", p, ErrOverlap, o.Name, q)
			}
		}
	}
	fam := netlink.FAMILY_V4
	if p.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	routes, err := netlink.RouteList(nil, fam)
	if err != nil {
		return fmt.Errorf("list host routes: %w", err)
	}
	ours := map[string]bool{}
	for _, o := range st.Networks {
		ours[o.Bridge] = true
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsLinkLocalUnicast() || r.Dst.IP.IsMulticast() {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok || ones == 0 {
			continue
		}
		q := netip.PrefixFrom(a.Unmap(), ones)
		if !q.Overlaps(p) {
			continue
		}
		dev := ""
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		if ours[dev] {
			continue
		}
		return fmt.Errorf("subnet %s: %w host route %s dev %s", p, ErrOverlap, q, dev)
	}
	return nil
}

// freeSubnet picks the first 10.90.N.0/24 that overlaps nothing.
func (m *Manager) freeSubnet(st *state) (string, error) {
	for i := 0; i < 256; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 90, byte(i), 0}), 24)
		if m.checkOverlap(st, p) == nil {
			return p.String(), nil
		}
	}
	return "", fmt.Errorf("%w: no free subnet in 10.90.0.0/16, give one with --subnet", ErrOverlap)
}

// Ensure makes sure the kernel side of a network exists (after a reboot the
// state survives but bridges and rules do not) and returns the network.
func (m *Manager) Ensure(name string) (*Network, error) {
	st, unlock, err := m.lockedState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	n := st.Networks[name]
	if n == nil {
		return nil, fmt.Errorf("network %s: %w", name, ErrNotFound)
	}
	if n.Driver != DriverCNI {
		if err := m.ensureNetwork(st, n); err != nil {
			return nil, err
		}
		if err := m.save(st, false); err != nil {
			return nil, err
		}
	}
	c := *n
	return &c, nil
}

// List returns all networks, sorted by name, with their containers.
func (m *Manager) List() ([]Network, error) {
	st, unlock, err := m.lockedState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := make([]Network, 0, len(st.Networks))
	for _, n := range st.Networks {
		c := *n
		for _, a := range st.Attachments {
			if a.Network == n.Name {
				c.Containers = append(c.Containers, a.ContainerID)
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect returns one network with its containers.
func (m *Manager) Inspect(name string) (*Network, error) {
	all, err := m.List()
	if err != nil {
		return nil, err
	}
	for _, n := range all {
		if n.Name == name || (len(name) >= 12 && len(n.ID) >= len(name) && n.ID[:len(name)] == name) {
			return &n, nil
		}
	}
	return nil, fmt.Errorf("network %s: %w", name, ErrNotFound)
}

// Attachments returns the attachments of a container (every network), or of
// every container when id is empty.
func (m *Manager) Attachments(id string) ([]Attachment, error) {
	st, unlock, err := m.lockedState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []Attachment
	for _, a := range st.Attachments {
		if id == "" || a.ContainerID == id {
			out = append(out, *a)
		}
	}
	return out, nil
}

// Remove deletes a network with its bridge and rules; it refuses while
// containers are attached.
func (m *Manager) Remove(name string) error {
	st, unlock, err := m.lockedState()
	if err != nil {
		return err
	}
	defer unlock()
	n := st.Networks[name]
	if n == nil {
		return fmt.Errorf("network %s: %w", name, ErrNotFound)
	}
	var users []string
	for _, a := range st.Attachments {
		if a.Network == name {
			users = append(users, a.ContainerID)
		}
	}
	if len(users) > 0 {
		return fmt.Errorf("network %s: %w by %d container(s): %v", name, ErrInUse, len(users), users)
	}
	if err := m.destroyNetwork(n); err != nil {
		return err
	}
	delete(st.Networks, name)
	return m.save(st, true)
}

// Prune removes every network except the default one that has no
// containers, and returns their names.
func (m *Manager) Prune() ([]string, error) {
	all, err := m.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, n := range all {
		if n.Name == DefaultNetwork || len(n.Containers) > 0 {
			continue
		}
		if err := m.Remove(n.Name); errors.Is(err, ErrInUse) || errors.Is(err, ErrNotFound) {
			continue // a container attached meanwhile, or another prune was faster
		} else if err != nil {
			return removed, err
		}
		removed = append(removed, n.Name)
	}
	return removed, nil
}

// netTag and isoTag name the rules of a network.
func netTag(name string) string { return "net:" + name }
func isoTag(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return "iso:" + a + "|" + b
}
func attTag(network, id string) string { return "att:" + network + "/" + id }

// isoOf reports whether tag is an isolation tag involving network name.
func isoOf(tag, name string) bool {
	if len(tag) < 4 || tag[:4] != "iso:" {
		return false
	}
	rest := tag[4:]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '|' {
			return rest[:i] == name || rest[i+1:] == name
		}
	}
	return false
}

// destroyNetwork removes the bridge and every rule of network n.
func (m *Manager) destroyNetwork(n *Network) error {
	if n.Driver == DriverCNI {
		return nil // the plugins own whatever they created
	}
	c, err := nft.Open(m.table)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.DeleteTagged(func(t string) bool { return t == netTag(n.Name) || isoOf(t, n.Name) }); err != nil {
		return err
	}
	if l, err := netlink.LinkByName(n.Bridge); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("delete bridge %s: %w", n.Bridge, err)
		}
	}
	return nil
}
