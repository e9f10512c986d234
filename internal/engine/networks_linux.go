package engine

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/engine/container"
	"cove/internal/engine/network"
)

// networkPlan lists the attachments of a container with a bridge or user
// network, first network first; the first carries the published ports.
func (e *Engine) networkPlan(r *container.Record, o *RunOptions, nsPath, mode string) ([]network.AttachOptions, error) {
	var ports []network.PortMapping
	for _, p := range o.Publish {
		pm, err := ParsePublish(p)
		if err != nil {
			return nil, err
		}
		ports = append(ports, pm)
	}
	if o.PublishAll {
		exposed, err := e.exposedPorts(r)
		if err != nil {
			return nil, err
		}
	next:
		for _, x := range exposed {
			for _, p := range ports {
				if p.ContainerPort == x.ContainerPort && p.Proto == x.Proto && p.Range <= 1 {
					continue next
				}
			}
			ports = append(ports, x)
		}
	}
	in, out, err := o.bandwidth()
	if err != nil {
		return nil, err
	}
	bw := network.Bandwidth{IngressBps: in, EgressBps: out}
	var list []network.AttachOptions
	if mode != "none" {
		name := mode
		if mode == "default" {
			name = network.DefaultNetwork
		}
		list = append(list, network.AttachOptions{Network: name, IP: o.IP, IPv6: o.IPv6, MAC: o.MAC,
			Aliases: o.NetworkAliases})
	}
	for _, c := range o.Networks {
		list = append(list, network.AttachOptions{Network: c.Name, IP: c.IP, IPv6: c.IPv6, MAC: c.MAC, Aliases: c.Aliases})
	}
	for i := range list {
		list[i].ContainerID, list[i].Name, list[i].NetNSPath = r.ID, r.Name, nsPath
		list[i].DNS, list[i].Bandwidth = o.DNS, bw
	}
	if len(list) > 0 {
		list[0].Ports = ports
	} else if len(ports) > 0 {
		return nil, fmt.Errorf("-p/-P: container %s has no network to publish on", r.Name)
	}
	return list, nil
}

// exposedPorts are the image's EXPOSE entries as random-port mappings (-P).
func (e *Engine) exposedPorts(r *container.Record) ([]network.PortMapping, error) {
	imgs, err := e.Images()
	if err != nil {
		return nil, err
	}
	img, err := imgs.Get(r.ImageID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Image, err)
	}
	var out []network.PortMapping
	for k := range img.Config.Config.ExposedPorts {
		port, proto, _ := strings.Cut(k, "/")
		if proto == "" {
			proto = "tcp"
		}
		lo, n, err := portRange(port)
		if err != nil || (proto != "tcp" && proto != "udp") {
			return nil, fmt.Errorf("image %s: EXPOSE %s: bad port", r.Image, k)
		}
		pm := network.PortMapping{ContainerPort: lo, Proto: proto}
		if n > 1 {
			pm.Range = n
		}
		out = append(out, pm)
	}
	return out, nil
}

// attachAll attaches the namespace at nsPath to each planned network and
// starts the DNS responders of user networks. On error the attachments
// made so far stay for networkTeardown.
func (e *Engine) attachAll(nets *network.Manager, list []network.AttachOptions) error {
	for _, a := range list {
		if _, err := nets.Attach(a); err != nil {
			return fmt.Errorf("--network %s: %w", a.Network, err)
		}
		if a.Network != network.DefaultNetwork {
			if err := e.ensureDNS(nets, a.Network); err != nil {
				return err
			}
		}
	}
	return nil
}

// dnsDir holds the pid files (flocked by the responders) of the networks' DNS responders.
func (e *Engine) dnsDir() string { return filepath.Join(e.cfg.RunRoot, "netdns") }

// ensureDNS starts the network's DNS responder (`cove network dns NAME`, a
// process of its own in its own session) unless it runs, and waits until
// it listens on the gateway. Networks without embedded DNS need none.
func (e *Engine) ensureDNS(nets *network.Manager, name string) error {
	n, err := nets.Inspect(name)
	if err != nil || !n.DNS || n.Driver == network.DriverCNI {
		return err
	}
	if err := os.MkdirAll(e.dnsDir(), 0o700); err != nil {
		return fmt.Errorf("dns responder dir: %w", err)
	}
	pidFile := filepath.Join(e.dnsDir(), name+".pid")
	if responderRunning(pidFile) {
		return nil
	}
	exe, err := coveBinary()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "--root", e.cfg.Root, "network", "dns", name)
	cmd.Env = append(os.Environ(), "COVE_RUNROOT="+e.cfg.RunRoot)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dns responder of %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if udpListening(n.Gateway, 53) {
			return nil
		}
		select {
		case err := <-done:
			if responderRunning(pidFile) {
				return nil // another cove started it first
			}
			return fmt.Errorf("dns responder of %s exited: %v", name, err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	return fmt.Errorf("dns responder of %s: not listening on %s:53 after 2s", name, n.Gateway)
}

// coveBinary finds the cove CLI: this program, or cove next to it, or in PATH.
func coveBinary() (string, error) {
	exe, err := os.Executable()
	if err == nil && filepath.Base(exe) == "cove" {
		return exe, nil
	}
	if err == nil {
		if p := filepath.Join(filepath.Dir(exe), "cove"); fileExists(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath("cove")
	if err != nil {
		return "", fmt.Errorf("cove binary for the dns responder: %w", err)
	}
	return p, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// responderRunning reports whether a responder holds the pid file's lock.
func responderRunning(pidFile string) bool {
	f, err := os.Open(pidFile)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// udpListening reports whether a UDP socket is bound to ip:port in the
// host's namespace (/proc/net/udp), without binding one itself.
func udpListening(ip string, port int) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return false
	}
	b := a.As4()
	want := strings.ToUpper(hex.EncodeToString([]byte{b[3], b[2], b[1], b[0]})) + ":" + fmt.Sprintf("%04X", port)
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) > 1 && fs[1] == want {
			return true
		}
	}
	return false
}

// ServeNetworkDNS runs the DNS responder of a network (`cove network dns`):
// it holds the pid file's lock while it runs and ends with ctx or once the
// network has had no containers for two seconds.
func (e *Engine) ServeNetworkDNS(ctx context.Context, name string) error {
	nets, err := e.Networks()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.dnsDir(), 0o700); err != nil {
		return fmt.Errorf("dns responder dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(e.dnsDir(), name+".pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("dns responder pid file: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("dns responder of %s already runs", name)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		idle := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			n, err := nets.Inspect(name)
			if err != nil || len(n.Containers) == 0 {
				idle++
			} else {
				idle = 0
			}
			if idle >= 2 {
				cancel()
				return
			}
		}
	}()
	err = nets.Serve(ctx, name, network.ServeOptions{})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// NetworkConnect connects a container to one more network (`cove network
// connect`): at once if it runs, and at every later start.
func (e *Engine) NetworkConnect(r *container.Record, c NetworkConn) error {
	if isSpecialNetwork(c.Name) {
		return fmt.Errorf("network connect: %s is not a network", c.Name)
	}
	probe := RunOptions{NetworkOptions: NetworkOptions{IP: c.IP, IPv6: c.IPv6, MAC: c.MAC}}
	if err := probe.normalizeNetwork(); err != nil {
		return err
	}
	nets, err := e.Networks()
	if err != nil {
		return err
	}
	if _, err := nets.Inspect(c.Name); err != nil {
		return err
	}
	unlock, err := e.lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := e.Containers.Get(r.ID)
	if err != nil {
		return err
	}
	o, err := Options(cur.Options)
	if err != nil {
		return err
	}
	if isSpecialNetwork(primaryNetwork(o)) && primaryNetwork(o) != "none" {
		return fmt.Errorf("container %s uses --network %s: cannot connect it to networks", cur.Name, o.Network)
	}
	for _, n := range containerNetworks(o) {
		if n == c.Name {
			return fmt.Errorf("container %s, network %s: %w", cur.Name, c.Name, network.ErrAttached)
		}
	}
	if st := e.State(cur); st.Running {
		nsPath := filepath.Join(e.RunDir(cur.ID), netnsFile)
		if !fileExists(nsPath) {
			nsPath = "/proc/" + strconv.Itoa(st.Pid) + "/ns/net"
		}
		in, out, _ := o.bandwidth()
		a := network.AttachOptions{ContainerID: cur.ID, Name: cur.Name, NetNSPath: nsPath, Network: c.Name,
			IP: c.IP, IPv6: c.IPv6, MAC: c.MAC, Aliases: c.Aliases, DNS: o.DNS,
			Bandwidth: network.Bandwidth{IngressBps: in, EgressBps: out}}
		if err := e.attachAll(nets, []network.AttachOptions{a}); err != nil {
			nets.Detach(cur.ID, c.Name)
			return err
		}
		o.Networks = append(o.Networks, c)
		e.refreshEtc(cur, o)
	} else {
		o.Networks = append(o.Networks, c)
	}
	return e.saveOptions(cur, o)
}

// NetworkDisconnect disconnects a container from a network, now if it runs
// and for later starts.
func (e *Engine) NetworkDisconnect(r *container.Record, name string) error {
	unlock, err := e.lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := e.Containers.Get(r.ID)
	if err != nil {
		return err
	}
	o, err := Options(cur.Options)
	if err != nil {
		return err
	}
	found := false
	if p := primaryNetwork(o); p == name || (name == network.DefaultNetwork && p == "default") {
		o.Network, o.IP, o.IPv6, o.MAC, o.NetworkAliases = "none", "", "", "", nil
		found = true
	}
	for i, c := range o.Networks {
		if c.Name == name {
			o.Networks = append(o.Networks[:i:i], o.Networks[i+1:]...)
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("container %s, network %s: %w", cur.Name, name, network.ErrNotAttached)
	}
	if e.State(cur).Running {
		nets, err := e.Networks()
		if err != nil {
			return err
		}
		if err := nets.Detach(cur.ID, name); err != nil && !errors.Is(err, network.ErrNotAttached) {
			return err
		}
		e.refreshEtc(cur, o)
	}
	return e.saveOptions(cur, o)
}

// primaryNetwork is the container's first --network, the default if none.
func primaryNetwork(o *RunOptions) string {
	if o.Network == "" {
		return DefaultNetwork()
	}
	return o.Network
}

// containerNetworks names the networks a container is attached to at start.
func containerNetworks(o *RunOptions) []string {
	var out []string
	switch p := primaryNetwork(o); {
	case p == "bridge" || p == "default":
		out = append(out, network.DefaultNetwork)
	case !isSpecialNetwork(p):
		out = append(out, p)
	}
	for _, c := range o.Networks {
		out = append(out, c.Name)
	}
	return out
}

func (e *Engine) saveOptions(r *container.Record, o *RunOptions) error {
	raw, err := encodeOptions(o)
	if err != nil {
		return err
	}
	r.Options = raw
	return e.Containers.Put(r)
}

// refreshEtc rewrites the running container's /etc/hosts and
// /etc/resolv.conf in place (they are bind mounts of files in its run
// directory) after a connect or disconnect.
func (e *Engine) refreshEtc(r *container.Record, o *RunOptions) {
	host := o.Hostname
	if host == "" {
		host = r.ID[:12]
	}
	if b, err := os.ReadFile(filepath.Join(e.RunDir(r.ID), "hostname")); err == nil {
		host = strings.TrimSpace(string(b))
	}
	h, rc, ok := e.netFiles(r, o, host)
	if !ok {
		return
	}
	for name, data := range map[string][]byte{"hosts": h, "resolv.conf": rc} {
		p := filepath.Join(e.RunDir(r.ID), name)
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0); err == nil {
			f.Write(data)
			f.Close()
		}
	}
}
