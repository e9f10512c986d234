// Package dns is the embedded DNS responder of a cove network: it answers
// A and AAAA queries for the names it is given (containers and their
// aliases) and forwards every other query to upstream resolvers, over UDP
// and TCP. It knows nothing about cove's state: the caller supplies a
// lookup function (package network wires it to the network's attachments).
package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// TTL of the answers for local names, in seconds: short, containers come and go.
const TTL = 10

// Server answers for local names and forwards the rest.
type Server struct {
	// Lookup returns the addresses of a local name (lower case, no
	// trailing dot) and whether the name is local at all.
	Lookup func(name string) ([]netip.Addr, bool)
	// LookupFor, if set, is used instead of Lookup: the answer may depend
	// on the asking client (a container on several networks).
	LookupFor func(client netip.Addr, name string) ([]netip.Addr, bool)
	// Upstreams are "ip:port" resolvers tried in order for other names.
	Upstreams []string
	// UpstreamsFor, if set, may return other upstreams for one client
	// (a container started with --dns); nil means Upstreams.
	UpstreamsFor func(client netip.Addr) []string
	// Timeout per upstream attempt (default 2 s).
	Timeout time.Duration
	// Log receives errors (default: discarded).
	Log *slog.Logger
}

// Serve listens on addr ("ip:port") over UDP and TCP until ctx ends.
func (s *Server) Serve(ctx context.Context, addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("dns listen udp %s: %w", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("dns listen tcp %s: %w", addr, err)
	}
	return s.ServeConns(ctx, pc, l)
}

// ServeConns serves on already open sockets (either may be nil) until ctx ends; it closes them.
func (s *Server) ServeConns(ctx context.Context, pc net.PacketConn, l net.Listener) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		if pc != nil {
			pc.Close()
		}
		if l != nil {
			l.Close()
		}
	})
	defer stop()
	if pc != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.serveUDP(ctx, pc) }()
	}
	if l != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.serveTCP(ctx, l) }()
	}
	wg.Wait()
	return ctx.Err()
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) serveUDP(ctx context.Context, pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil {
				s.log().Error("dns udp read", "err", err)
			}
			return
		}
		req := append([]byte(nil), buf[:n]...)
		go func() {
			resp := s.HandleFrom(ctx, req, false, addrOf(from))
			if resp != nil {
				pc.WriteTo(resp, from)
			}
		}()
	}
}

func (s *Server) serveTCP(ctx context.Context, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil {
				s.log().Error("dns tcp accept", "err", err)
			}
			return
		}
		go func() {
			defer c.Close()
			for {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := readTCP(c)
				if err != nil {
					return
				}
				resp := s.HandleFrom(ctx, req, true, addrOf(c.RemoteAddr()))
				if resp == nil || writeTCP(c, resp) != nil {
					return
				}
			}
		}()
	}
}

func readTCP(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeTCP(w io.Writer, msg []byte) error {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

// Handle answers one DNS message; tcp says how it came (and how to forward
// it). It returns nil for input that is not worth an answer.
func (s *Server) Handle(ctx context.Context, req []byte, tcp bool) []byte {
	return s.HandleFrom(ctx, req, tcp, netip.Addr{})
}

// addrOf is the IP of a UDP or TCP address (zero otherwise).
func addrOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// HandleFrom is Handle for a query from client (which picks the upstreams).
func (s *Server) HandleFrom(ctx context.Context, req []byte, tcp bool, client netip.Addr) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return reply(h, nil, dnsmessage.RCodeFormatError, nil)
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	if q.Class == dnsmessage.ClassINET {
		var addrs []netip.Addr
		ok := false
		switch {
		case s.LookupFor != nil:
			addrs, ok = s.LookupFor(client, name)
		case s.Lookup != nil:
			addrs, ok = s.Lookup(name)
		}
		if ok {
			return reply(h, &q, dnsmessage.RCodeSuccess, addrs)
		}
	}
	ups := s.Upstreams
	if s.UpstreamsFor != nil {
		if u := s.UpstreamsFor(client); u != nil {
			ups = u
		}
	}
	if resp := s.forward(ctx, req, tcp, ups); resp != nil {
		return resp
	}
	return reply(h, &q, dnsmessage.RCodeServerFailure, nil)
}

// reply builds an answer with the addresses of q's type.
func reply(h dnsmessage.Header, q *dnsmessage.Question, rc dnsmessage.RCode, addrs []netip.Addr) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: rc == dnsmessage.RCodeSuccess,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rc})
	b.EnableCompression()
	if q == nil {
		out, _ := b.Finish()
		return out
	}
	b.StartQuestions()
	b.Question(*q)
	b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: TTL}
	for _, a := range addrs {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			rh.Type = dnsmessage.TypeA
			b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6() && !a.Is4In6():
			rh.Type = dnsmessage.TypeAAAA
			b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// forward relays req to the upstreams in turn; nil when none answered.
func (s *Server) forward(ctx context.Context, req []byte, tcp bool, upstreams []string) []byte {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	for _, up := range upstreams {
		resp, err := exchange(ctx, up, req, tcp, timeout)
		if err == nil {
			return resp
		}
		s.log().Debug("dns forward", "upstream", up, "err", err)
	}
	return nil
}

// exchange sends one query to upstream and returns its answer. A truncated
// UDP answer is retried over TCP.
func exchange(ctx context.Context, upstream string, req []byte, tcp bool, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	network := "udp"
	if tcp {
		network = "tcp"
	}
	c, err := d.DialContext(ctx, network, upstream)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if tcp {
		if err := writeTCP(c, req); err != nil {
			return nil, err
		}
		return readTCP(c)
	}
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	if n >= 4 && buf[2]&0x02 != 0 { // TC bit
		return exchange(ctx, upstream, req, true, timeout)
	}
	if n < 2 || buf[0] != req[0] || buf[1] != req[1] {
		return nil, errors.New("answer id mismatch")
	}
	return buf[:n], nil
}

// Query builds a query message for name and type (a helper for clients and tests).
func Query(id uint16, name string, t dnsmessage.Type) ([]byte, error) {
	n, err := dnsmessage.NewName(strings.TrimSuffix(name, ".") + ".")
	if err != nil {
		return nil, fmt.Errorf("dns name %q: %w", name, err)
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: n, Type: t, Class: dnsmessage.ClassINET})
	return b.Finish()
}

// Answers parses a response into its rcode and A/AAAA addresses.
func Answers(resp []byte) (dnsmessage.RCode, []netip.Addr, error) {
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		return 0, nil, fmt.Errorf("parse dns answer: %w", err)
	}
	var out []netip.Addr
	for _, r := range m.Answers {
		switch b := r.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(b.A))
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(b.AAAA))
		}
	}
	return m.Header.RCode, out, nil
}
