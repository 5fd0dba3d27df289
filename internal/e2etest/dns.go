package e2etest

import (
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
)

// DNSServer is a minimal authoritative DNS server on loopback UDP that answers
// A queries for one name with a set of IPv4 addresses, rotating their order on
// every answer (as Kubernetes' CoreDNS `loadbalance` plugin does for a
// headless service), and every other query with an empty answer. It lets
// tests resolve one gateway name to several replicas exactly as a gRPC
// `dns://<server>/<name>:<port>` target does in production, without touching
// the machine's resolver.
type DNSServer struct {
	// Addr is host:port of the server, for a `dns://Addr/name:port` target.
	Addr string

	name string
	ips  []net.IP
	conn net.PacketConn
	mu   sync.Mutex
	turn int
}

// NewDNSServer serves name -> ips until the end of the test.
func NewDNSServer(t testing.TB, name string, ips ...string) *DNSServer {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &DNSServer{Addr: c.LocalAddr().String(), name: strings.ToLower(strings.TrimSuffix(name, ".")), conn: c}
	for _, ip := range ips {
		p := net.ParseIP(ip).To4()
		if p == nil {
			t.Fatalf("e2etest: DNS server serves IPv4 only, got %q", ip)
		}
		s.ips = append(s.ips, p)
	}
	go s.serve()
	t.Cleanup(func() { _ = c.Close() })
	return s
}

func (s *DNSServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := s.answer(buf[:n]); resp != nil {
			_, _ = s.conn.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query message (nil for garbage).
func (s *DNSServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// Question: labels, then qtype and qclass.
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qEnd := i + 5
	qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
	name := strings.ToLower(strings.Join(labels, "."))

	var answers [][]byte
	rcode := byte(0)
	switch {
	case name != s.name:
		rcode = 3 // NXDOMAIN
	case qtype == 1: // A
		s.mu.Lock()
		start := s.turn % len(s.ips)
		s.turn++
		s.mu.Unlock()
		for k := range s.ips {
			ip := s.ips[(start+k)%len(s.ips)]
			rr := []byte{0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4}
			answers = append(answers, append(rr, ip...))
		}
	}
	resp := make([]byte, 0, qEnd+16*len(answers))
	resp = append(resp, q[0], q[1])                              // id
	resp = append(resp, 0x84|(q[2]&0x01), 0x80|rcode)            // QR, AA, RD copied; RA; rcode
	resp = append(resp, 0, 1, 0, byte(len(answers)), 0, 0, 0, 0) // 1 question, answers
	resp = append(resp, q[12:qEnd]...)
	for _, a := range answers {
		resp = append(resp, a...)
	}
	return resp
}
