package networktest

import (
	"fmt"
	"testing"

	"cove/internal/engine/network"
)

// BenchmarkAttach measures what network setup adds to a container start:
// one Attach (veth, addresses, route, one published port, state written
// under the lock) into an existing namespace. Detach runs untimed.
func BenchmarkAttach(b *testing.B) {
	for _, bc := range []struct {
		name   string
		ports  []network.PortMapping
		others int // containers already attached, each with a published port
	}{
		{"plain", nil, 0},
		{"port", []network.PortMapping{{HostPort: 18800, ContainerPort: 80}}, 0},
		{"port-with-100-others", []network.PortMapping{{HostPort: 18800, ContainerPort: 80}}, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b)
			if _, err := e.m.EnsureDefault(); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < bc.others; i++ {
				id := fmt.Sprintf("bo%d", i)
				e.attach(id, network.AttachOptions{Ports: []network.PortMapping{{HostPort: uint16(19000 + i), ContainerPort: 80}}})
			}
			ns := newNS(b, "bench")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.m.Attach(network.AttachOptions{ContainerID: "bench", NetNSPath: ns, Ports: bc.ports}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.m.Detach("bench", ""); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkDetach measures the teardown at container removal.
func BenchmarkDetach(b *testing.B) {
	e := newEnv(b)
	if _, err := e.m.EnsureDefault(); err != nil {
		b.Fatal(err)
	}
	ns := newNS(b, "bench")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := e.m.Attach(network.AttachOptions{ContainerID: "bench", NetNSPath: ns}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := e.m.Detach("bench", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate measures `cove network create`: validation, overlap
// checks against host routes, bridge, addresses and nftables rules.
func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	for i := 0; i < b.N; i++ {
		if _, err := e.m.Create(network.Config{Name: "covet-bc", Subnet: "10.201.30.0/24"}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := e.m.Remove("covet-bc"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
