// Package nft programs cove's own nftables table over netlink (no nft
// binary): NAT for outbound traffic, DNAT for published ports, and forward
// rules that isolate networks from each other and internal networks from the
// outside. Everything lives in one `inet` table whose name the caller picks
// ("cove" in production, something else in tests), so other tables are never
// touched. Every rule carries a tag in its user data; rules are found and
// deleted by tag.
//
// Layout of the table:
//
//	chain prerouting  { type nat hook prerouting priority dstnat; fib daddr type local jump ports }
//	chain output      { type nat hook output priority dstnat; fib daddr type local jump ports }
//	chain ports       { per published port: [ip daddr H] tcp dport P dnat ip to C:Q }
//	chain postrouting { type nat hook postrouting priority srcnat; masquerade rules }
//	chain forward     { type filter hook forward priority filter; isolation drops }
package nft

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Chain names inside the table.
const (
	ChainPrerouting  = "prerouting"
	ChainOutput      = "output"
	ChainPorts       = "ports"
	ChainPostrouting = "postrouting"
	ChainForward     = "forward"
)

// Rule is one rule to add: the chain it goes to, its tag and its expressions.
type Rule struct {
	Chain string
	Tag   string
	Exprs []expr.Any
}

// Conn is a connection to one cove table.
type Conn struct {
	c     *nftables.Conn
	table *nftables.Table
}

// Open returns a connection for the inet table name (created by Ensure).
func Open(name string) (*Conn, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &Conn{c: c, table: &nftables.Table{Name: name, Family: nftables.TableFamilyINet}}, nil
}

// Table is the table's name.
func (c *Conn) Table() string { return c.table.Name }

// Ensure creates the table with its chains if it does not exist yet. The
// table is created in one transaction, so it exists either whole or not at all.
func (c *Conn) Ensure() error {
	if _, err := c.c.ListTableOfFamily(c.table.Name, nftables.TableFamilyINet); err == nil {
		return nil
	}
	t := c.c.AddTable(c.table)
	accept := nftables.ChainPolicyAccept
	nat := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.c.AddChain(&nftables.Chain{Name: name, Table: t, Hooknum: hook, Priority: prio, Type: nftables.ChainTypeNAT})
	}
	ports := c.c.AddChain(&nftables.Chain{Name: ChainPorts, Table: t})
	pre := nat(ChainPrerouting, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := nat(ChainOutput, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	nat(ChainPostrouting, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	c.c.AddChain(&nftables.Chain{Name: ChainForward, Table: t, Hooknum: nftables.ChainHookForward,
		Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter, Policy: &accept})
	toPorts := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: ports.Name},
	}
	c.c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: toPorts, UserData: []byte("base")})
	c.c.AddRule(&nftables.Rule{Table: t, Chain: out, Exprs: toPorts, UserData: []byte("base")})
	if err := c.c.Flush(); err != nil {
		return fmt.Errorf("create nftables table inet %s: %w", c.table.Name, err)
	}
	return nil
}

// Add adds rules in one transaction: all or none.
func (c *Conn) Add(rules []Rule) error {
	if len(rules) == 0 {
		return nil
	}
	for _, r := range rules {
		c.c.AddRule(&nftables.Rule{
			Table:    c.table,
			Chain:    &nftables.Chain{Name: r.Chain, Table: c.table},
			Exprs:    r.Exprs,
			UserData: []byte(r.Tag),
		})
	}
	if err := c.c.Flush(); err != nil {
		return fmt.Errorf("add nftables rules (table %s): %w", c.table.Name, err)
	}
	return nil
}

// Tagged is a rule found in the table.
type Tagged struct {
	Chain  string
	Tag    string
	Handle uint64
}

// List returns every rule of the table with its tag (empty table: nil).
func (c *Conn) List() ([]Tagged, error) {
	chains, err := c.c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	var out []Tagged
	for _, ch := range chains {
		if ch.Table.Name != c.table.Name {
			continue
		}
		rules, err := c.c.GetRules(c.table, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			out = append(out, Tagged{Chain: ch.Name, Tag: string(r.UserData), Handle: r.Handle})
		}
	}
	return out, nil
}

// DeleteTagged deletes, in one transaction, every rule whose tag satisfies
// match, and returns how many it deleted. A missing table deletes nothing.
func (c *Conn) DeleteTagged(match func(tag string) bool) (int, error) {
	if _, err := c.c.ListTableOfFamily(c.table.Name, nftables.TableFamilyINet); err != nil {
		return 0, nil
	}
	rules, err := c.List()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rules {
		if r.Tag == "base" || !match(r.Tag) {
			continue
		}
		if err := c.c.DelRule(&nftables.Rule{Table: c.table, Chain: &nftables.Chain{Name: r.Chain, Table: c.table}, Handle: r.Handle}); err != nil {
			return 0, fmt.Errorf("delete rule %q: %w", r.Tag, err)
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := c.c.Flush(); err != nil {
		return 0, fmt.Errorf("delete nftables rules (table %s): %w", c.table.Name, err)
	}
	return n, nil
}

// DeleteTable removes the whole table (tests and `network prune` of the last network).
func (c *Conn) DeleteTable() error {
	if _, err := c.c.ListTableOfFamily(c.table.Name, nftables.TableFamilyINet); err != nil {
		return nil
	}
	c.c.DelTable(c.table)
	if err := c.c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table %s: %w", c.table.Name, err)
	}
	return nil
}

// Close releases the connection.
func (c *Conn) Close() error { return c.c.CloseLasting() }

// HasPrefix returns a matcher for tags starting with p.
func HasPrefix(p string) func(string) bool {
	return func(tag string) bool { return strings.HasPrefix(tag, p) }
}

// Masquerade: traffic from subnet leaving through any interface but bridge
// gets the outgoing interface's address.
func Masquerade(tag string, subnet netip.Prefix, bridge string) Rule {
	e := append(matchSrc(subnet), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, bridge)...)
	return Rule{Chain: ChainPostrouting, Tag: tag, Exprs: append(e, &expr.Masq{})}
}

// LoopbackMasquerade: traffic from 127.0.0.0/8 (DNAT-ed in the output chain
// from a host connection to 127.0.0.1) leaving through bridge is masqueraded
// so the container can answer it. Needs route_localnet on bridge.
func LoopbackMasquerade(tag, bridge string) Rule {
	e := append(matchSrc(netip.MustParsePrefix("127.0.0.0/8")), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridge)...)
	return Rule{Chain: ChainPostrouting, Tag: tag, Exprs: append(e, &expr.Masq{})}
}

// Hairpin: a container reaching its own published port through a host address
// comes back on the bridge; masquerade so the reply returns through conntrack.
func Hairpin(tag string, ip netip.Addr, bridge string) Rule {
	e := append(matchSrc(netip.PrefixFrom(ip, ip.BitLen())), matchDst(netip.PrefixFrom(ip, ip.BitLen()))...)
	e = append(e, ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridge)...)
	return Rule{Chain: ChainPostrouting, Tag: tag, Exprs: append(e, &expr.Masq{})}
}

// DropBetween drops forwarded traffic entering from bridge a and leaving to bridge b.
func DropBetween(tag, a, b string) Rule {
	e := append(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, a), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, b)...)
	return Rule{Chain: ChainForward, Tag: tag, Exprs: append(e, &expr.Verdict{Kind: expr.VerdictDrop})}
}

// InternalDrops are the two rules that keep an internal network's traffic on
// its bridge: nothing forwarded out of it, nothing forwarded into it.
func InternalDrops(tag, bridge string) []Rule {
	out := append(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, bridge)...)
	in := append(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, bridge)...)
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	return []Rule{
		{Chain: ChainForward, Tag: tag, Exprs: append(out, drop)},
		{Chain: ChainForward, Tag: tag, Exprs: append(in, drop)},
	}
}

// DNAT publishes hostPort (on hostIP, or every local address when hostIP is
// invalid) for proto ("tcp" or "udp") to target:port.
func DNAT(tag string, hostIP netip.Addr, proto string, hostPort uint16, target netip.Addr, port uint16) (Rule, error) {
	var e []expr.Any
	if hostIP.IsValid() {
		if hostIP.Is4() != target.Is4() {
			return Rule{}, fmt.Errorf("host address %s and container address %s differ in family", hostIP, target)
		}
		e = matchDst(netip.PrefixFrom(hostIP, hostIP.BitLen()))
	} else {
		e = nfproto(target)
	}
	var p byte
	switch proto {
	case "tcp":
		p = unix.IPPROTO_TCP
	case "udp":
		p = unix.IPPROTO_UDP
	default:
		return Rule{}, fmt.Errorf("unsupported protocol %q", proto)
	}
	fam := uint32(unix.NFPROTO_IPV4)
	if target.Is6() {
		fam = unix.NFPROTO_IPV6
	}
	e = append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(hostPort)},
		&expr.Immediate{Register: 1, Data: target.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
	return Rule{Chain: ChainPorts, Tag: tag, Exprs: e}, nil
}

// nfproto matches the address family of a.
func nfproto(a netip.Addr) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if a.Is6() {
		p = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

func matchSrc(p netip.Prefix) []expr.Any { return matchAddr(p, 12, 8) }
func matchDst(p netip.Prefix) []expr.Any { return matchAddr(p, 16, 24) }

// matchAddr matches the source or destination address (offset off4 in an
// IPv4 header, off6 in an IPv6 header) against prefix p.
func matchAddr(p netip.Prefix, off4, off6 uint32) []expr.Any {
	p = p.Masked()
	off, n := off4, uint32(4)
	if p.Addr().Is6() {
		off, n = off6, 16
	}
	e := append(nfproto(p.Addr()), &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n})
	if p.Bits() < p.Addr().BitLen() {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
}

// ifname compares the input or output interface name.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}
