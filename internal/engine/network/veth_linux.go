package network

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// vethSpec is one veth pair to create in a single RTM_NEWLINK message.
type vethSpec struct {
	Host     string // host end name
	Master   int    // bridge ifindex the host end joins
	MTU      int
	Peer     string // peer name in the target namespace
	PeerMAC  net.HardwareAddr
	PeerNSFd int // target namespace
}

// createVeth creates the pair with the host end up and already on
// its bridge and the peer already in its namespace under its final name:
// one netlink round trip instead of the four that netlink.LinkAdd and
// LinkSetMaster take (veth setup is most of an attach's cost).
func createVeth(s vethSpec) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(s.Host)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(s.MTU))))
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(s.Master))))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	peer := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	// The peer's ifinfomsg stays zero: asking for IFF_UP there fails
	// (ENOTCONN on 6.18); the caller brings it up inside the namespace.
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(s.Peer))
	peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(s.MTU)))
	if len(s.PeerMAC) > 0 {
		peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(s.PeerMAC))
	}
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(s.PeerNSFd)))
	req.AddData(info)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("create veth %s (peer %s): %w", s.Host, s.Peer, err)
	}
	return nil
}
