package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// DriverCNI backs a network with a CNI plugin chain (a conflist), run with
// libcni. The plugins do all the kernel work; cove records the result.
const DriverCNI = "cni"

// DefaultCNIPath is where plugins are looked for (Debian's
// containernetworking-plugins, then the upstream default).
var DefaultCNIPath = []string{"/usr/lib/cni", "/opt/cni/bin"}

// WithCNIPath sets the plugin directories.
func WithCNIPath(dirs ...string) Option { return func(m *Manager) { m.cniPath = dirs } }

// cniList parses a conflist and renames it to the cove network's name (the
// name keys libcni's result cache and the plugins' own state).
func cniList(name string, raw []byte) (*libcni.NetworkConfigList, []byte, error) {
	var conf map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, nil, fmt.Errorf("cni conflist: %w: %w", ErrInvalidConfig, err)
	}
	conf["name"] = name
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, nil, fmt.Errorf("cni conflist: %w", err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, nil, fmt.Errorf("cni conflist: %w: %w", ErrInvalidConfig, err)
	}
	return list, b, nil
}

func (m *Manager) cni() *libcni.CNIConfig {
	path := m.cniPath
	if path == nil {
		path = DefaultCNIPath
	}
	return libcni.NewCNIConfigWithCacheDir(path, filepath.Join(m.dir, "cni-cache"), nil)
}

func cniRuntime(a *Attachment) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: a.ContainerID, NetNS: a.NetNSPath, IfName: a.IfName,
		CapabilityArgs: map[string]any{}}
	if len(a.Ports) > 0 {
		var pm []map[string]any
		for _, p := range a.Ports {
			for i := uint16(0); i < max(p.Range, 1); i++ {
				pm = append(pm, map[string]any{"hostPort": int(p.HostPort + i), "containerPort": int(p.ContainerPort + i),
					"protocol": p.Proto, "hostIP": p.HostIP})
			}
		}
		rt.CapabilityArgs["portMappings"] = pm
	}
	if a.Bandwidth.IngressBps > 0 || a.Bandwidth.EgressBps > 0 {
		// The bandwidth plugin takes bits per second.
		rt.CapabilityArgs["bandwidth"] = map[string]any{
			"ingressRate": a.Bandwidth.IngressBps * 8, "ingressBurst": max(a.Bandwidth.IngressBps/100, 64<<10) * 8,
			"egressRate": a.Bandwidth.EgressBps * 8, "egressBurst": max(a.Bandwidth.EgressBps/100, 64<<10) * 8}
	}
	if a.MAC != "" {
		rt.CapabilityArgs["mac"] = a.MAC
	}
	if len(a.Aliases) > 0 {
		rt.CapabilityArgs["aliases"] = map[string][]string{a.Network: a.Aliases}
	}
	return rt
}

// attachCNI runs ADD of the network's plugin chain and records the
// addresses the plugins report. ADD failures run DEL (the CNI contract).
func (m *Manager) attachCNI(n *Network, a *Attachment) error {
	list, _, err := cniList(n.Name, n.CNIConfList)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := m.cni().AddNetworkList(ctx, list, cniRuntime(a))
	if err != nil {
		m.cni().DelNetworkList(ctx, list, cniRuntime(a))
		return fmt.Errorf("cni add (%s): %w", n.Name, err)
	}
	r, err := types100.GetResult(res)
	if err != nil {
		m.cni().DelNetworkList(ctx, list, cniRuntime(a))
		return fmt.Errorf("cni result (%s): %w", n.Name, err)
	}
	for _, ip := range r.IPs {
		addr, ok := netip.AddrFromSlice(ip.Address.IP)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		ones, _ := ip.Address.Mask.Size()
		switch {
		case addr.Is4() && a.IP == "":
			a.IP, a.PrefixLen = addr.String(), ones
			if ip.Gateway != nil {
				a.Gateway = ip.Gateway.String()
			}
		case addr.Is6() && a.IPv6 == "":
			a.IPv6 = addr.String()
			if ip.Gateway != nil {
				a.IPv6Gateway = ip.Gateway.String()
			}
		}
	}
	for _, i := range r.Interfaces {
		if i.Sandbox != "" && i.Name == a.IfName && i.Mac != "" {
			a.MAC = i.Mac
		}
	}
	return nil
}

// detachCNI runs DEL of the plugin chain (best effort when the namespace is gone).
func (m *Manager) detachCNI(n *Network, a *Attachment) error {
	list, _, err := cniList(n.Name, n.CNIConfList)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt := cniRuntime(a)
	if netnsGone(a.NetNSPath) {
		rt.NetNS = ""
	}
	if err := m.cni().DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("cni del (%s): %w", n.Name, err)
	}
	return nil
}
