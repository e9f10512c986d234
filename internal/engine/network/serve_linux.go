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
// 12 characters) and forwards the rest to the host's resolvers. Names are
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
	s := &dns.Server{Lookup: t.lookup, UpstreamsFor: t.upstreams, Upstreams: ups, Log: o.Log}
	return s.Serve(ctx, addr)
}

// nameTable maps names to addresses, rebuilt when the state file changes.
type nameTable struct {
	m       *Manager
	network string
	mu      sync.Mutex
	mtime   time.Time
	size    int64
	names   map[string][]netip.Addr
	dns     map[netip.Addr][]string // client address -> its --dns upstreams
}

func (t *nameTable) lookup(name string) ([]netip.Addr, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	a, ok := t.names[name]
	return a, ok
}

// upstreams returns the --dns servers of the container at client, if any.
func (t *nameTable) upstreams(client netip.Addr) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	return t.dns[client]
}

// refresh reloads the tables when the state file changed.
// Preconditions: t.mu is held.
func (t *nameTable) refresh() {
	if fi, err := os.Stat(filepath.Join(t.m.dir, stateFile)); err == nil && (!fi.ModTime().Equal(t.mtime) || fi.Size() != t.size || t.names == nil) {
		// Read without the lock: the file is replaced atomically.
		if st, err := t.m.load(); err == nil {
			t.names, t.dns = names(st, t.network)
			t.mtime, t.size = fi.ModTime(), fi.Size()
		}
	}
}

// names builds the name table of one network and the per-client upstreams.
func names(st *state, network string) (map[string][]netip.Addr, map[netip.Addr][]string) {
	out := map[string][]netip.Addr{}
	ups := map[netip.Addr][]string{}
	for _, a := range st.Attachments {
		if a.Network != network {
			continue
		}
		var addrs []netip.Addr
		for _, s := range []string{a.IP, a.IPv6} {
			if ip, err := netip.ParseAddr(s); err == nil {
				addrs = append(addrs, ip)
				for _, d := range a.DNS {
					ups[ip] = append(ups[ip], net.JoinHostPort(d, "53"))
				}
			}
		}
		keys := append([]string{a.Name}, a.Aliases...)
		if len(a.ContainerID) >= 12 {
			keys = append(keys, a.ContainerID[:12])
		}
		for _, k := range keys {
			if k = strings.ToLower(strings.TrimSuffix(k, ".")); k != "" {
				out[k] = append(out[k], addrs...)
			}
		}
	}
	return out, ups
}
