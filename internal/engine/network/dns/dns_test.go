package dns

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// start runs s on 127.0.0.1 with a random port (UDP and TCP on the same port).
func start(t *testing.T, s *Server) string {
	t.Helper()
	for try := 0; try < 20; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.ServeConns(ctx, pc, l); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return pc.LocalAddr().String()
	}
	t.Fatal("no free port")
	return ""
}

func ask(t *testing.T, server, name string, typ dnsmessage.Type, tcp bool) (dnsmessage.RCode, []netip.Addr) {
	t.Helper()
	q, err := Query(42, name, typ)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := exchange(context.Background(), server, q, tcp, 2e9)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	rc, addrs, err := Answers(resp)
	if err != nil {
		t.Fatal(err)
	}
	return rc, addrs
}

func TestLocalAndForwarded(t *testing.T) {
	upstream := start(t, &Server{Lookup: func(n string) ([]netip.Addr, bool) {
		if n == "example.test" {
			return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, true
		}
		return nil, false
	}})
	local := start(t, &Server{Upstreams: []string{upstream}, Lookup: func(n string) ([]netip.Addr, bool) {
		switch n {
		case "web", "www":
			return []netip.Addr{netip.MustParseAddr("10.90.0.2"), netip.MustParseAddr("fd00::2")}, true
		}
		return nil, false
	}})
	for _, tcp := range []bool{false, true} {
		rc, a := ask(t, local, "WEB.", dnsmessage.TypeA, tcp)
		if rc != dnsmessage.RCodeSuccess || len(a) != 1 || a[0].String() != "10.90.0.2" {
			t.Errorf("tcp=%v A web: %v %v", tcp, rc, a)
		}
		_, a = ask(t, local, "www", dnsmessage.TypeAAAA, tcp)
		if len(a) != 1 || a[0].String() != "fd00::2" {
			t.Errorf("tcp=%v AAAA www: %v", tcp, a)
		}
		_, a = ask(t, local, "example.test", dnsmessage.TypeA, tcp)
		if len(a) != 1 || a[0].String() != "192.0.2.7" {
			t.Errorf("tcp=%v forwarded: %v", tcp, a)
		}
	}
	// No upstream knows it: SERVFAIL from the upstream chain's end.
	rc, _ := ask(t, local, "nowhere.test", dnsmessage.TypeA, false)
	if rc != dnsmessage.RCodeServerFailure {
		t.Errorf("unknown name: rcode %v", rc)
	}
}
