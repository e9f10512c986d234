package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"cove/internal/engine/container"
	"cove/internal/engine/network"
)

// netnsFile is where a container's pre-created network namespace is bound.
const netnsFile = "netns"

// Networks opens (once) the network manager under <root>/network. The
// environment can give it a private prefix and default subnet
// (COVE_NETWORK_PREFIX, COVE_DEFAULT_SUBNET) so that tests never touch the
// host's cove0.
func (e *Engine) Networks() (*network.Manager, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.nets == nil {
		var opts []network.Option
		if p := os.Getenv("COVE_NETWORK_PREFIX"); p != "" {
			opts = append(opts, network.WithPrefix(p), network.WithTable(p))
		}
		if s := os.Getenv("COVE_DEFAULT_SUBNET"); s != "" {
			opts = append(opts, network.WithDefaultSubnet(s))
		}
		m, err := network.Open(filepath.Join(e.cfg.Root, "network"), opts...)
		if err != nil {
			return nil, fmt.Errorf("open networks: %w", err)
		}
		e.nets = m
	}
	return e.nets, nil
}

// DefaultNetwork is the --network of containers that name none: bridge as
// in docker, or COVE_DEFAULT_NETWORK.
func DefaultNetwork() string {
	if n := os.Getenv("COVE_DEFAULT_NETWORK"); n != "" {
		return n
	}
	return network.DefaultNetwork
}

// ParsePublish parses -p [ip:][hostPort:]containerPort[-end][/proto].
func ParsePublish(s string) (network.PortMapping, error) {
	var pm network.PortMapping
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return pm, fmt.Errorf("-p %s: protocol must be tcp or udp", s)
	}
	pm.Proto = proto
	parts := strings.Split(spec, ":")
	var hostPart, ctrPart string
	switch len(parts) {
	case 1:
		ctrPart = parts[0]
	case 2:
		hostPart, ctrPart = parts[0], parts[1]
	case 3:
		pm.HostIP, hostPart, ctrPart = parts[0], parts[1], parts[2]
	default:
		return pm, fmt.Errorf("-p %s: want [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]", s)
	}
	cport, cn, err := portRange(ctrPart)
	if err != nil {
		return pm, fmt.Errorf("-p %s: %w", s, err)
	}
	pm.ContainerPort = cport
	if cn > 1 {
		pm.Range = cn
	}
	if hostPart != "" {
		hport, hn, err := portRange(hostPart)
		if err != nil {
			return pm, fmt.Errorf("-p %s: %w", s, err)
		}
		if hn != cn {
			return pm, fmt.Errorf("-p %s: host and container ranges differ in size", s)
		}
		pm.HostPort = hport
	}
	return pm, nil
}

func portRange(s string) (uint16, uint16, error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(a, 10, 16)
	if err != nil || lo == 0 {
		return 0, 0, fmt.Errorf("bad port %q", s)
	}
	if !isRange {
		return uint16(lo), 1, nil
	}
	hi, err := strconv.ParseUint(b, 10, 16)
	if err != nil || hi < lo {
		return 0, 0, fmt.Errorf("bad port range %q", s)
	}
	return uint16(lo), uint16(hi - lo + 1), nil
}

// newNetns creates a network namespace bound at path (an existing file).
func newNetns(path string) error {
	errc := make(chan error, 1)
	go func() {
		// This thread enters the new namespace and is never unlocked, so
		// the Go runtime ends it instead of reusing it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind network namespace: %w", err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// networkSetup prepares the container's network: the namespace to join
// ("" for a fresh one with only loopback, "host" for the host's, a path
// otherwise) and, for bridge and user networks (every --network and
// `network connect`), a pre-created namespace attached to each.
func (e *Engine) networkSetup(r *container.Record, o *RunOptions) (string, error) {
	mode := primaryNetwork(o)
	switch {
	case mode == "none" && len(o.Networks) == 0:
		return "", nil
	case mode == "host":
		return "host", nil
	case strings.HasPrefix(mode, "container:"):
		return e.nsPath(mode, "net")
	case strings.HasPrefix(mode, "ns:"):
		return strings.TrimPrefix(mode, "ns:"), nil
	}
	nets, err := e.Networks()
	if err != nil {
		return "", err
	}
	nsPath := filepath.Join(e.RunDir(r.ID), netnsFile)
	list, err := e.networkPlan(r, o, nsPath, mode)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(nsPath, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("network namespace file: %w", err)
	}
	f.Close()
	if err := newNetns(nsPath); err != nil {
		return "", err
	}
	if len(list) == 0 {
		if err := network.LoopbackUp(nsPath); err != nil {
			return "", err
		}
	}
	if err := e.attachAll(nets, list); err != nil {
		return "", err
	}
	crashPoint("start:network")
	return nsPath, nil
}

// networkTeardown detaches the container from its networks and removes
// its namespace. Idempotent.
func (e *Engine) networkTeardown(id string) {
	nsPath := filepath.Join(e.RunDir(id), netnsFile)
	_, err := os.Stat(nsPath)
	// A container without a namespace of cove's may still have been
	// connected to networks while it ran (`network connect`).
	if err != nil && !fileExists(filepath.Join(e.cfg.Root, "network")) {
		return
	}
	if nets, nerr := e.Networks(); nerr == nil {
		nets.DetachAll(id)
	}
	if err == nil {
		unix.Unmount(nsPath, unix.MNT_DETACH)
		os.Remove(nsPath)
	}
}

// netFiles writes /etc/hosts and /etc/resolv.conf content for the
// container's networks; ok is false when it has none. On a network with
// embedded DNS, resolv.conf names its gateway.
func (e *Engine) netFiles(r *container.Record, o *RunOptions, host string) (hosts, resolv []byte, ok bool) {
	if _, err := os.Stat(filepath.Join(e.RunDir(r.ID), netnsFile)); err != nil && len(o.Networks) == 0 {
		return nil, nil, false
	}
	nets, err := e.Networks()
	if err != nil {
		return nil, nil, false
	}
	atts, err := nets.Attachments(r.ID)
	if err != nil || len(atts) == 0 {
		return nil, nil, false
	}
	hosts, err = network.HostsFile(network.HostsOptions{Hostname: host, Attachments: atts, ExtraHosts: o.AddHosts})
	if err != nil {
		return nil, nil, false
	}
	embedded := ""
	for _, a := range atts {
		if a.Network == network.DefaultNetwork {
			continue
		}
		if n, err := nets.Inspect(a.Network); err == nil && n.DNS && n.Driver != network.DriverCNI {
			embedded = n.Gateway
			break
		}
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	resolv, err = network.ResolvConf(network.ResolvOptions{Host: hostResolv, DNS: o.DNS, EmbeddedDNS: embedded,
		Search: o.DNSSearch, Options: o.DNSOptions})
	if err != nil {
		return nil, nil, false
	}
	return hosts, resolv, true
}

// Ports lists the container's published ports.
func (e *Engine) Ports(r *container.Record) ([]network.PortMapping, error) {
	if _, err := os.Stat(filepath.Join(e.RunDir(r.ID), netnsFile)); err != nil {
		return nil, nil
	}
	nets, err := e.Networks()
	if err != nil {
		return nil, err
	}
	atts, err := nets.Attachments(r.ID)
	if err != nil {
		return nil, err
	}
	var out []network.PortMapping
	for _, a := range atts {
		out = append(out, a.Ports...)
	}
	return out, nil
}
