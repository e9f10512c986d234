// Command netbench is the helper of bench/network.sh: it sets up and tears
// down a cove network through the library (there is no `cove network` CLI
// yet), and measures TCP request/response latency.
//
//	netbench setup DIR      network "bench" (bridge coveb0) with containers in
//	                        netns coveb-a and coveb-b, coveb-b's 5201 and 7000
//	                        published on host ports 15201 and 17000; prints
//	                        the containers' addresses
//	netbench teardown DIR   undo setup (namespaces, network, nftables table)
//	netbench rr-server ADDR echo one byte per round trip, forever
//	netbench rr ADDR N      N one-byte round trips; prints the mean in µs
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"cove/internal/engine/network"
	"cove/internal/engine/network/nft"
)

const (
	prefix = "coveb"
	table  = "coveb"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: netbench setup|teardown DIR | rr-server ADDR | rr ADDR N")
	}
	switch args[0] {
	case "setup":
		return setup(args[1])
	case "teardown":
		return teardown(args[1])
	case "rr-server":
		return rrServer(args[1])
	case "rr":
		n := 1000
		if len(args) > 2 {
			n, _ = strconv.Atoi(args[2])
		}
		return rr(args[1], n)
	}
	return fmt.Errorf("unknown verb %q", args[0])
}

func open(dir string) (*network.Manager, error) {
	return network.Open(dir, network.WithPrefix(prefix), network.WithTable(table), network.WithDefaultSubnet("10.212.0.0/24"))
}

func setup(dir string) error {
	m, err := open(dir)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name  string
		ports []network.PortMapping
	}{{"a", nil}, {"b", []network.PortMapping{{HostPort: 15201, ContainerPort: 5201}, {HostPort: 17000, ContainerPort: 7000}}}} {
		ns := prefix + "-" + c.name
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns add %s: %v: %s", ns, err, out)
		}
		a, err := m.Attach(network.AttachOptions{ContainerID: "bench-" + c.name, Name: c.name,
			NetNSPath: "/run/netns/" + ns, Ports: c.ports})
		if err != nil {
			return err
		}
		fmt.Printf("%s %s\n", c.name, a.IP)
	}
	return nil
}

func teardown(dir string) error {
	m, err := open(dir)
	if err != nil {
		return err
	}
	for _, c := range []string{"a", "b"} {
		m.Detach("bench-"+c, "")
		exec.Command("ip", "netns", "delete", prefix+"-"+c).Run()
	}
	m.Remove(network.DefaultNetwork)
	c, err := nft.Open(table)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.DeleteTable()
}

func rrServer(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			c.(*net.TCPConn).SetNoDelay(true)
			b := make([]byte, 1)
			for {
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				if _, err := c.Write(b); err != nil {
					return
				}
			}
		}()
	}
}

func rr(addr string, n int) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	b := []byte{1}
	for i := 0; i < 50; i++ { // warm up
		c.Write(b)
		io.ReadFull(c, b)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
	}
	fmt.Printf("%.1f\n", float64(time.Since(start).Microseconds())/float64(n))
	return nil
}
