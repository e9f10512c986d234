package main

// `cove network create/ls/inspect/rm/prune/connect/disconnect` and the
// network flags of run/create beyond -p, --dns, --add-host, --network-alias.

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"cove/internal/engine"
	"cove/internal/engine/network"
)

func init() { register(newNetworkCommand) }

// addNetworkFlags adds --network (repeatable) and the other network flags of run/create.
func addNetworkFlags(fs *pflag.FlagSet, o *engine.RunOptions) {
	fs.StringArrayVar(&o.NetworkFlags, "network", nil,
		"network: bridge (default), none, host, NAME, container:NAME, ns:PATH; repeat for more networks (eth1, ...)")
	fs.StringVar(&o.IP, "ip", "", "IPv4 address on the first network")
	fs.StringVar(&o.IPv6, "ip6", "", "IPv6 address on the first network")
	fs.StringVar(&o.MAC, "mac-address", "", "MAC address on the first network")
	fs.BoolVarP(&o.PublishAll, "publish-all", "P", false, "publish the image's exposed ports on random host ports")
	fs.StringArrayVar(&o.DNSSearch, "dns-search", nil, "DNS search domain")
	fs.StringArrayVar(&o.DNSOptions, "dns-option", nil, "DNS resolver option (ndots:2)")
	fs.StringVar(&o.IngressBps, "network-ingress-bps", "", "limit traffic to the container, bytes/s (500k, 10m)")
	fs.StringVar(&o.EgressBps, "network-egress-bps", "", "limit traffic from the container, bytes/s (500k, 10m)")
}

func openNetworks() (*engine.Engine, *network.Manager, error) {
	e, err := openEngine()
	if err != nil {
		return nil, nil, err
	}
	m, err := e.Networks()
	return e, m, err
}

func newNetworkCommand() *cobra.Command {
	c := &cobra.Command{Use: "network", Short: "Manage networks", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	c.AddCommand(newNetworkCreateCommand(), newNetworkListCommand(), newNetworkInspectCommand(),
		newNetworkRemoveCommand(), newNetworkPruneCommand(), newNetworkConnectCommand(),
		newNetworkDisconnectCommand(), newNetworkDNSCommand())
	return c
}

func newNetworkCreateCommand() *cobra.Command {
	var cfg network.Config
	var subnets, gateways, opts, labels []string
	var ipv6 bool
	c := &cobra.Command{
		Use:   "create [flags] NAME",
		Short: "Create a network (bridge with NAT, or --internal without a way out)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg.Name = args[0]
			for _, s := range subnets {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("--subnet %s: invalid CIDR", s)
				}
				if p.Addr().Is4() {
					cfg.Subnet = s
				} else {
					cfg.IPv6Subnet, ipv6 = s, true
				}
			}
			for _, g := range gateways {
				a, err := netip.ParseAddr(g)
				if err != nil {
					return fmt.Errorf("--gateway %s: invalid address", g)
				}
				if a.Is4() {
					cfg.Gateway = g
				} else {
					cfg.IPv6Gateway = g
				}
			}
			if ipv6 && cfg.IPv6Subnet == "" {
				var b [5]byte
				rand.Read(b[:])
				cfg.IPv6Subnet = fmt.Sprintf("fd%02x:%02x%02x:%02x%02x::/64", b[0], b[1], b[2], b[3], b[4])
			}
			o, err := kvMap(opts, "--opt")
			if err != nil {
				return err
			}
			for k, v := range o {
				switch k {
				case "mtu", "com.docker.network.driver.mtu":
					if cfg.MTU, err = strconv.Atoi(v); err != nil || cfg.MTU < 576 || cfg.MTU > 65535 {
						return fmt.Errorf("--opt mtu=%s: want 576..65535", v)
					}
				case "bridge", "com.docker.network.bridge.name":
					cfg.Bridge = v
				case "cni-conf":
					if cfg.CNIConfList, err = os.ReadFile(v); err != nil {
						return fmt.Errorf("--opt cni-conf: %w", err)
					}
				default:
					return fmt.Errorf("--opt %s: unknown option (mtu, bridge, cni-conf)", k)
				}
			}
			if cfg.Driver == network.DriverCNI && cfg.CNIConfList == nil {
				return fmt.Errorf("--driver cni needs --opt cni-conf=FILE (a CNI conflist)")
			}
			if cfg.Labels, err = kvMap(labels, "--label"); err != nil {
				return err
			}
			_, m, err := openNetworks()
			if err != nil {
				return err
			}
			n, err := m.Create(cfg)
			if err != nil {
				return err
			}
			fmt.Println(n.ID)
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVarP(&cfg.Driver, "driver", "d", "bridge", "bridge or cni")
	fs.StringArrayVar(&subnets, "subnet", nil, "subnet in CIDR form (one IPv4, one IPv6)")
	fs.StringArrayVar(&gateways, "gateway", nil, "gateway address of the subnet")
	fs.StringVar(&cfg.IPRange, "ip-range", "", "allocate container addresses from this part of the subnet")
	fs.BoolVar(&cfg.Internal, "internal", false, "no outbound traffic (no NAT, no forwarding off the bridge)")
	fs.BoolVar(&ipv6, "ipv6", false, "IPv6 too (a random ULA /64 unless --subnet gives one)")
	fs.StringArrayVarP(&opts, "opt", "o", nil, "driver option: mtu=N, bridge=NAME, cni-conf=FILE")
	fs.StringArrayVar(&labels, "label", nil, "set a label (KEY=VALUE)")
	return c
}

// networkRow is what ls templates see, in docker's field names.
type networkRow struct {
	ID, Name, Driver, Scope, IPv6, Internal, CreatedAt, Labels string
}

func newNetworkListCommand() *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, m, err := openNetworks()
			if err != nil {
				return err
			}
			list, err := m.List()
			if err != nil {
				return err
			}
			var rows []networkRow
			for _, n := range list {
				ok, err := networkMatches(&n, filters)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				id := n.ID
				if !noTrunc && len(id) > 12 {
					id = id[:12]
				}
				var ls []string
				for k, v := range n.Labels {
					ls = append(ls, k+"="+v)
				}
				rows = append(rows, networkRow{ID: id, Name: n.Name, Driver: n.Driver, Scope: "local",
					IPv6: strconv.FormatBool(n.IPv6Subnet != ""), Internal: strconv.FormatBool(n.Internal),
					CreatedAt: n.Created.Format(time.RFC3339), Labels: strings.Join(ls, ",")})
			}
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Println(r.ID)
				}
				return nil
			case format != "" && format != "table":
				tmpl, err := template.New("ls").Parse(strings.TrimPrefix(format, "table "))
				if err != nil {
					return fmt.Errorf("--format: %w", err)
				}
				for _, r := range rows {
					if err := tmpl.Execute(os.Stdout, r); err != nil {
						return fmt.Errorf("--format: %w", err)
					}
					fmt.Println()
				}
				return nil
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Driver, r.Scope)
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only ids")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "full ids")
	c.Flags().StringVar(&format, "format", "", "Go template ({{.ID}} {{.Name}} {{.Driver}} {{.Scope}} {{.Internal}} {{.IPv6}} {{.Labels}})")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter: name=, id=, driver=, label=KEY[=VALUE]")
	return c
}

func networkMatches(n *network.Network, filters []string) (bool, error) {
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return false, fmt.Errorf("--filter %s: want KEY=VALUE", f)
		}
		switch k {
		case "name":
			if !strings.Contains(n.Name, v) {
				return false, nil
			}
		case "id":
			if !strings.HasPrefix(n.ID, v) {
				return false, nil
			}
		case "driver":
			if n.Driver != v {
				return false, nil
			}
		case "label":
			lk, lv, hasV := strings.Cut(v, "=")
			got, has := n.Labels[lk]
			if !has || hasV && got != lv {
				return false, nil
			}
		default:
			return false, fmt.Errorf("--filter %s: unknown key (name, id, driver, label)", f)
		}
	}
	return true, nil
}

// Docker's `network inspect` layout.
type (
	inspectNetwork struct {
		Name       string                     `json:"Name"`
		ID         string                     `json:"Id"`
		Created    time.Time                  `json:"Created"`
		Scope      string                     `json:"Scope"`
		Driver     string                     `json:"Driver"`
		EnableIPv6 bool                       `json:"EnableIPv6"`
		IPAM       inspectIPAM                `json:"IPAM"`
		Internal   bool                       `json:"Internal"`
		Containers map[string]inspectEndpoint `json:"Containers"`
		Options    map[string]string          `json:"Options"`
		Labels     map[string]string          `json:"Labels"`
		Bridge     string                     `json:"Bridge,omitempty"`
		DNS        bool                       `json:"DNSEnabled"`
	}
	inspectIPAM struct {
		Driver string              `json:"Driver"`
		Config []map[string]string `json:"Config"`
	}
	inspectEndpoint struct {
		Name        string   `json:"Name"`
		MacAddress  string   `json:"MacAddress"`
		IPv4Address string   `json:"IPv4Address"`
		IPv6Address string   `json:"IPv6Address"`
		Interface   string   `json:"Interface"`
		HostVeth    string   `json:"HostInterface,omitempty"`
		Aliases     []string `json:"Aliases,omitempty"`
	}
)

func inspectNet(n *network.Network, atts []network.Attachment) inspectNetwork {
	out := inspectNetwork{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
		EnableIPv6: n.IPv6Subnet != "", Internal: n.Internal, Bridge: n.Bridge, DNS: n.DNS,
		IPAM:       inspectIPAM{Driver: "default", Config: []map[string]string{}},
		Containers: map[string]inspectEndpoint{}, Options: map[string]string{}, Labels: n.Labels}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Subnet != "" {
		cfg := map[string]string{"Subnet": n.Subnet, "Gateway": n.Gateway}
		if n.IPRange != "" {
			cfg["IPRange"] = n.IPRange
		}
		out.IPAM.Config = append(out.IPAM.Config, cfg)
	}
	if n.IPv6Subnet != "" {
		out.IPAM.Config = append(out.IPAM.Config, map[string]string{"Subnet": n.IPv6Subnet, "Gateway": n.IPv6Gateway})
	}
	if n.MTU != 0 {
		out.Options["com.docker.network.driver.mtu"] = strconv.Itoa(n.MTU)
	}
	if n.Bridge != "" {
		out.Options["com.docker.network.bridge.name"] = n.Bridge
	}
	for _, a := range atts {
		if a.Network != n.Name {
			continue
		}
		ep := inspectEndpoint{Name: a.Name, MacAddress: a.MAC, Interface: a.IfName, HostVeth: a.HostVeth, Aliases: a.Aliases}
		if a.IP != "" {
			ep.IPv4Address = fmt.Sprintf("%s/%d", a.IP, a.PrefixLen)
		}
		if a.IPv6 != "" {
			bits := 64
			if p, err := netip.ParsePrefix(n.IPv6Subnet); err == nil {
				bits = p.Bits()
			}
			ep.IPv6Address = fmt.Sprintf("%s/%d", a.IPv6, bits)
		}
		out.Containers[a.ContainerID] = ep
	}
	return out
}

// lookupNetwork finds a network by name, id or unique id prefix.
func lookupNetwork(m *network.Manager, arg string) (*network.Network, error) {
	if n, err := m.Inspect(arg); err == nil {
		return n, nil
	}
	list, err := m.List()
	if err != nil {
		return nil, err
	}
	var found *network.Network
	for i := range list {
		if strings.HasPrefix(list[i].ID, arg) {
			if found != nil {
				return nil, fmt.Errorf("network id prefix %s is ambiguous", arg)
			}
			found = &list[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("network %s: %w", arg, network.ErrNotFound)
	}
	return found, nil
}

func newNetworkInspectCommand() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [flags] NETWORK...",
		Short: "Show networks' details (docker's JSON layout)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			_, m, err := openNetworks()
			if err != nil {
				return err
			}
			atts, err := m.Attachments("")
			if err != nil {
				return err
			}
			var out []inspectNetwork
			for _, a := range args {
				n, err := lookupNetwork(m, a)
				if err != nil {
					return err
				}
				out = append(out, inspectNet(n, atts))
			}
			return printInspect(out, format)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template")
	return c
}

func newNetworkRemoveCommand() *cobra.Command {
	c := &cobra.Command{
		Use:     "rm NETWORK...",
		Aliases: []string{"remove"},
		Short:   "Remove networks (refused while containers are attached)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			_, m, err := openNetworks()
			if err != nil {
				return err
			}
			var failed int
			for _, a := range args {
				n, err := lookupNetwork(m, a)
				if err == nil && n.Name == network.DefaultNetwork {
					err = fmt.Errorf("network %s is the default network and cannot be removed", n.Name)
				}
				if err == nil {
					err = m.Remove(n.Name)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "Error:", err)
					failed++
					continue
				}
				fmt.Println(a)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d networks failed", failed, len(args))
			}
			return nil
		},
	}
	return c
}

func newNetworkPruneCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "prune [flags]",
		Short: "Remove every network without containers (the default network stays)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, m, err := openNetworks()
			if err != nil {
				return err
			}
			removed, err := m.Prune()
			if len(removed) > 0 {
				fmt.Println("Deleted Networks:")
				for _, n := range removed {
					fmt.Println(n)
				}
			}
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not ask (cove never asks)")
	return c
}

func newNetworkConnectCommand() *cobra.Command {
	var conn engine.NetworkConn
	c := &cobra.Command{
		Use:   "connect [flags] NETWORK CONTAINER",
		Short: "Connect a container to a network (at once if running, and at every start)",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			e, m, err := openNetworks()
			if err != nil {
				return err
			}
			n, err := lookupNetwork(m, args[0])
			if err != nil {
				return err
			}
			r, err := lookup(e, args[1])
			if err != nil {
				return err
			}
			conn.Name = n.Name
			return e.NetworkConnect(r, conn)
		},
	}
	c.Flags().StringVar(&conn.IP, "ip", "", "IPv4 address")
	c.Flags().StringVar(&conn.IPv6, "ip6", "", "IPv6 address")
	c.Flags().StringVar(&conn.MAC, "mac-address", "", "MAC address")
	c.Flags().StringArrayVar(&conn.Aliases, "alias", nil, "DNS alias on this network")
	return c
}

func newNetworkDisconnectCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "disconnect [flags] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			e, m, err := openNetworks()
			if err != nil {
				return err
			}
			name := args[0]
			if n, err := lookupNetwork(m, name); err == nil {
				name = n.Name
			}
			r, err := lookup(e, args[1])
			if err != nil {
				return err
			}
			return e.NetworkDisconnect(r, name)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "accepted for docker compatibility")
	return c
}

// newNetworkDNSCommand is the hidden DNS responder of one network, started
// by the engine on the first attach and ending when the network is empty.
func newNetworkDNSCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "dns NETWORK",
		Short:  "Run a network's DNS responder (started by cove itself)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			return e.ServeNetworkDNS(c.Context(), args[0])
		},
	}
}
