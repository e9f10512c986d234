package networktest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cove/internal/engine/network"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// A network backed by a CNI conflist (Debian's bridge and host-local
// plugins): two containers get addresses from the plugins and talk; detach
// runs DEL, which frees the address and removes the interface.
func TestNetCNI(t *testing.T) {
	e := newEnv(t)
	var path string
	for _, d := range network.DefaultCNIPath {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			path = d
		}
	}
	if path == "" {
		t.Skip("CNI plugins not installed (Debian package containernetworking-plugins)")
	}
	ipamDir := filepath.Join(e.dir, "host-local")
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "ignored", "plugins": [
		{"type": "bridge", "bridge": "%scni0", "isGateway": true, "ipMasq": false,
		 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.201.20.0/24"}]], "dataDir": %q,
		          "routes": [{"dst": "0.0.0.0/0"}]}}]}`, prefix, ipamDir)
	if _, err := e.m.Create(network.Config{Name: "covet-cni", Driver: network.DriverCNI, CNIConfList: []byte(conf)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Create(network.Config{Name: "covet-cni2", Driver: network.DriverCNI, CNIConfList: []byte("{not json")}); err == nil {
		t.Error("bad conflist accepted")
	}
	ns1, a1 := e.attach("k1", network.AttachOptions{Network: "covet-cni"})
	_, a2 := e.attach("k2", network.AttachOptions{Network: "covet-cni"})
	if !strings.HasPrefix(a1.IP, "10.201.20.") || a1.IP == a2.IP || a1.Gateway != "10.201.20.1" {
		t.Fatalf("cni addresses %s %s gateway %s", a1.IP, a2.IP, a1.Gateway)
	}
	if err := ping(ns1, a2.IP); err != nil {
		t.Error(err)
	}
	lease := filepath.Join(ipamDir, "covet-cni", a1.IP)
	if _, err := os.Stat(lease); err != nil {
		t.Fatalf("host-local lease: %v", err)
	}
	if err := e.m.Detach("k1", "covet-cni"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lease); !os.IsNotExist(err) {
		t.Errorf("lease %s survives detach: %v", lease, err)
	}
	h, _ := netns.GetFromPath(ns1)
	defer h.Close()
	nh, _ := netlink.NewHandleAt(h)
	defer nh.Close()
	if _, err := nh.LinkByName("eth0"); err == nil {
		t.Error("eth0 survives CNI DEL")
	}
	if err := e.m.Remove("covet-cni"); err == nil {
		t.Error("removed a CNI network in use")
	}
}
