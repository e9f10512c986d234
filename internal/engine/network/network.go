// Package network gives containers their networks: bridge networks with
// IPAM, veth pairs, NAT, published ports, isolation, bandwidth limits and an
// embedded DNS responder. It is a library for the engine: `cove run` and
// `cove network ...` call it and contain no networking code of their own.
//
// State (networks, address allocations, attachments) lives in one JSON file
// under the directory given to Open, rewritten atomically while an flock on
// the directory's lock file is held, so short-lived cove processes may run
// concurrently: every Manager method that changes anything takes the lock
// for its whole duration, kernel work included.
//
// Kernel objects, named from the Manager's prefix ("cove" by default):
//
//	bridge   <prefix>0 for the default network "bridge", <prefix>-<8 hex> for others
//	veth     <prefix>v<8 hex> on the host (a bridge port), eth0..N in the container
//	ifb      <prefix>i<8 hex>: egress limit (host veth ingress redirected, tbf)
//	tbf      root qdisc of the host veth: ingress limit
//	nftables table inet <table> (package nft), rules tagged net:, iso:, att:
//
// Lifecycle, as the engine uses it:
//
//	m, _ := network.Open("/var/lib/cove/network")
//	m.Create(network.Config{Name: "web", Subnet: "10.90.0.0/24"})   // cove network create
//	a, _ := m.Attach(network.AttachOptions{ContainerID: id, Name: "db",
//		NetNSPath: "/proc/PID/ns/net", Network: "web",
//		Ports: []network.PortMapping{{HostPort: 8080, ContainerPort: 80}}}) // cove run/start, network connect
//	hosts, _ := network.HostsFile(network.HostsOptions{Hostname: "db", Attachments: []network.Attachment{*a}})
//	resolv, _ := network.ResolvConf(network.ResolvOptions{Host: hostResolvConf, EmbeddedDNS: n.Gateway}) // if n.DNS
//	m.Attachments(id)                                            // cove port, inspect
//	m.Detach(id, "web") / m.DetachAll(id)                        // network disconnect, cove stop/rm
//	m.Repair()                                                   // cove system check
//	m.Serve(ctx, "web", network.ServeOptions{})                  // DNS, in a long-lived helper process
//
// A network backed by CNI plugins is created with Driver DriverCNI and a
// conflist; Attach and Detach then run the plugin chain through libcni.
//
// Attach rolls back on error (no veth, rule or address left behind). An
// attachment is recorded only once complete, and the lock is held
// throughout, so a crash in the middle of Attach leaves only a veth and
// rules that nothing in the state refers to; Repair removes those, as well
// as attachments whose network namespace is gone.
//
// Modes none, host, container:X and ns:/path need no setup from this package
// beyond ParseMode and LoopbackUp.
package network

import (
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors, checked with errors.Is.
var (
	ErrNotFound      = errors.New("no such network")
	ErrExists        = errors.New("network already exists")
	ErrInUse         = errors.New("network in use")
	ErrOverlap       = errors.New("subnet overlaps")
	ErrPortTaken     = errors.New("host port already in use")
	ErrAttached      = errors.New("container already attached to network")
	ErrNotAttached   = errors.New("container not attached to network")
	ErrInvalidConfig = errors.New("invalid network configuration")
)

// DefaultNetwork is the name of the network used when none is given.
const DefaultNetwork = "bridge"

// Config describes a network to create (`cove network create`).
type Config struct {
	Name string
	// Driver is "bridge" (default) or "cni" (CNIConfList required; the
	// plugins then do addressing, and Subnet and the fields below do not apply).
	Driver string
	// CNIConfList is a CNI network configuration list (JSON) for driver cni;
	// its name is replaced by Name.
	CNIConfList []byte
	// Subnet in CIDR form; empty picks a free 10.89-10.127/24-16 subnet.
	Subnet string
	// Gateway defaults to the first host address of Subnet.
	Gateway string
	// IPRange restricts dynamic allocation to a part of Subnet.
	IPRange string
	// IPv6Subnet, when set, gives containers an IPv6 address too (a ULA
	// fd00::/8 /64 is the usual choice); IPv6Gateway defaults to its ::1.
	// Like Docker, this turns on net.ipv6.conf.all.forwarding, which makes
	// the host ignore router advertisements unless accept_ra is 2.
	IPv6Subnet  string
	IPv6Gateway string
	// Internal networks have no route out: no NAT, forwarding off the bridge dropped.
	Internal bool
	// MTU of the bridge and veths; 0 means 1500.
	MTU int
	// Bridge overrides the generated bridge name.
	Bridge string
	// Labels are kept for the engine (`--label`).
	Labels map[string]string
}

// Network is a created network as stored and inspected.
type Network struct {
	Name        string            `json:"name"`
	ID          string            `json:"id"`
	Driver      string            `json:"driver"`
	Bridge      string            `json:"bridge"`
	Subnet      string            `json:"subnet"`
	Gateway     string            `json:"gateway"`
	IPRange     string            `json:"ipRange,omitempty"`
	IPv6Subnet  string            `json:"ipv6Subnet,omitempty"`
	IPv6Gateway string            `json:"ipv6Gateway,omitempty"`
	Internal    bool              `json:"internal,omitempty"`
	MTU         int               `json:"mtu"`
	DNS         bool              `json:"dns"`
	Labels      map[string]string `json:"labels,omitempty"`
	CNIConfList json.RawMessage   `json:"cniConfList,omitempty"`
	Created     time.Time         `json:"created"`
	// KernelBoot is the boot id under which the bridge and rules were last
	// set up; Attach skips re-checking them within the same boot.
	KernelBoot string `json:"kernelBoot,omitempty"`
	// Containers attached, filled in by Inspect and List only.
	Containers []string `json:"containers,omitempty"`
}

// PortMapping publishes a container port on the host (`-p`), IPv4 only.
type PortMapping struct {
	// HostIP restricts the mapping to one host address; empty means all.
	HostIP string `json:"hostIP,omitempty"`
	// HostPort 0 picks a free port.
	HostPort      uint16 `json:"hostPort"`
	ContainerPort uint16 `json:"containerPort"`
	// Proto is "tcp" (default) or "udp".
	Proto string `json:"proto"`
	// Range > 1 publishes Range consecutive ports starting at both ports.
	Range uint16 `json:"range,omitempty"`
}

// Bandwidth limits a container's traffic in bytes per second; 0 is
// unlimited. Both limits are enforced on the host side, out of reach of a
// container with CAP_NET_ADMIN.
type Bandwidth struct {
	// IngressBps limits traffic to the container.
	IngressBps uint64 `json:"ingressBps,omitempty"`
	// EgressBps limits traffic from the container.
	EgressBps uint64 `json:"egressBps,omitempty"`
}

// AttachOptions connects a container's network namespace to a network.
type AttachOptions struct {
	ContainerID string
	// Name is the container's name, resolvable by the network's DNS.
	Name string
	// NetNSPath is the container's network namespace (/proc/PID/ns/net or a bind mount).
	NetNSPath string
	// Network defaults to DefaultNetwork.
	Network string
	// IP and IPv6 request static addresses; empty allocates.
	IP   string
	IPv6 string
	// MAC sets the interface's address; empty generates one.
	MAC string
	// Aliases are extra DNS names on this network.
	Aliases []string
	Ports   []PortMapping
	// IfName is the interface name in the container; empty picks eth0..N.
	IfName    string
	Bandwidth Bandwidth
	// DNS servers (--dns) the network's DNS responder forwards this
	// container's queries to, instead of the host's resolvers.
	DNS []string
}

// Attachment is a container's presence on a network.
type Attachment struct {
	ContainerID string        `json:"containerID"`
	Name        string        `json:"name,omitempty"`
	Network     string        `json:"network"`
	NetNSPath   string        `json:"netnsPath"`
	IfName      string        `json:"ifName"`
	HostVeth    string        `json:"hostVeth"`
	MAC         string        `json:"mac"`
	IP          string        `json:"ip"`
	IPv6        string        `json:"ipv6,omitempty"`
	PrefixLen   int           `json:"prefixLen"`
	Gateway     string        `json:"gateway"`
	IPv6Gateway string        `json:"ipv6Gateway,omitempty"`
	Aliases     []string      `json:"aliases,omitempty"`
	Ports       []PortMapping `json:"ports,omitempty"`
	Bandwidth   Bandwidth     `json:"bandwidth"`
	DNS         []string      `json:"dns,omitempty"`
	Created     time.Time     `json:"created"`
}
