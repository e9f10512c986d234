package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"cove/internal/engine/network/dns"
)

// ServeOptions tunes Serve.
type ServeOptions struct {
	// Addr overrides the listening address (default: the gateway, port 53).
	Addr string
	// Upstreams ("ip:port") override the resolvers read from ResolvConf.
	Upstreams []string
	// ResolvConf is the host's resolver file (default /etc/resolv.conf).
	ResolvConf string
	// Log receives errors (default: discarded).
	Log *slog.Logger
}

// Serve runs the DNS responder of a network until ctx ends: it answers for
// the names and aliases of the network's containers (and their ids' first
// 12 characters), then, for a client on several networks, for those of its
// other networks' containers (as Docker's embedded DNS does), and forwards
// the rest to the host's resolvers. Names are
// reloaded from the state whenever the state file changes, so the engine
// only needs to start this once per network, in a long-lived process.
func (m *Manager) Serve(ctx context.Context, network string, o ServeOptions) error {
	n, err := m.Ensure(network)
	if err != nil {
		return err
	}
	if !n.DNS {
		return fmt.Errorf("network %s: %w: no embedded DNS on the default network", network, ErrInvalidConfig)
	}
	addr := o.Addr
	if addr == "" {
		addr = net.JoinHostPort(n.Gateway, "53")
	}
	ups := o.Upstreams
	if ups == nil {
		rc := o.ResolvConf
		if rc == "" {
			rc = "/etc/resolv.conf"
		}
		b, err := os.ReadFile(rc)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("host resolvers: %w", err)
		}
		for _, ns := range Nameservers(b) {
			if ns != n.Gateway && ns != n.IPv6Gateway {
				ups = append(ups, net.JoinHostPort(ns, "53"))
			}
		}
	}
	t := &nameTable{m: m, network: network}
	s := &dns.Server{LookupFor: t.lookup, UpstreamsFor: t.upstreams, Upstreams: ups, Log: o.Log}
	return s.Serve(ctx, addr)
}

// nameTable maps names to addresses, rebuilt when the state file changes.
type nameTable struct {
	m       *Manager
	network string
	mu      sync.Mutex
	mtime   time.Time
	size    int64
	names   map[string]map[string][]netip.Addr // network -> name -> addresses
	nets    map[netip.Addr][]string            // client address -> its container's networks
	dns     map[netip.Addr][]string            // client address -> its --dns upstreams
}

// lookup answers name for client: this network's containers first, then
// those of the client's other networks (addresses on those networks, which
// the client reaches directly).
func (t *nameTable) lookup(client netip.Addr, name string) ([]netip.Addr, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	return t.lookupNoRefresh(client, name)
}

// lookupNoRefresh is lookup on the tables as they are.
// Preconditions: t.mu is held.
func (t *nameTable) lookupNoRefresh(client netip.Addr, name string) ([]netip.Addr, bool) {
	if a, ok := t.names[t.network][name]; ok {
		return a, true
	}
	for _, n := range t.nets[client.Unmap()] {
		if a, ok := t.names[n][name]; ok && n != t.network {
			return a, true
		}
	}
	return nil, false
}

// upstreams returns the --dns servers of the container at client, if any.
func (t *nameTable) upstreams(client netip.Addr) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	return t.dns[client.Unmap()]
}

// refresh reloads the tables when the state file changed.
// Preconditions: t.mu is held.
func (t *nameTable) refresh() {
	if fi, err := os.Stat(filepath.Join(t.m.dir, stateFile)); err == nil && (!fi.ModTime().Equal(t.mtime) || fi.Size() != t.size || t.names == nil) {
		// Read without the lock: the file is replaced atomically.
		if st, err := t.m.load(); err == nil {
			t.names, t.nets, t.dns = names(st, t.network)
			t.mtime, t.size = fi.ModTime(), fi.Size()
		}
	}
}

// names builds the name table of every network, the networks of each
// client on network, and the per-client upstreams.
func names(st *state, network string) (map[string]map[string][]netip.Addr, map[netip.Addr][]string, map[netip.Addr][]string) {
	out := map[string]map[string][]netip.Addr{}
	ups := map[netip.Addr][]string{}
	netsOf := map[string][]string{} // container id -> networks
	clients := map[netip.Addr]string{}
	for _, a := range st.Attachments {
		netsOf[a.ContainerID] = append(netsOf[a.ContainerID], a.Network)
		var addrs []netip.Addr
		for _, s := range []string{a.IP, a.IPv6} {
			if ip, err := netip.ParseAddr(s); err == nil {
				addrs = append(addrs, ip)
				if a.Network == network {
					clients[ip] = a.ContainerID
					for _, d := range a.DNS {
						ups[ip] = append(ups[ip], net.JoinHostPort(d, "53"))
					}
				}
			}
		}
		keys := append([]string{a.Name}, a.Aliases...)
		if len(a.ContainerID) >= 12 {
			keys = append(keys, a.ContainerID[:12])
		}
		if out[a.Network] == nil {
			out[a.Network] = map[string][]netip.Addr{}
		}
		for _, k := range keys {
			if k = strings.ToLower(strings.TrimSuffix(k, ".")); k != "" {
				out[a.Network][k] = append(out[a.Network][k], addrs...)
			}
		}
	}
	nets := map[netip.Addr][]string{}
	for ip, id := range clients {
		nets[ip] = netsOf[id]
	}
	return out, nets, ups
}
