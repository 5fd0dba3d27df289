package e2etest

import (
	"context"
	"net"
	"sort"
	"testing"
	"time"
)

func TestDNSServerAnswersEveryAddressInTurn(t *testing.T) {
	s := NewDNSServer(t, "gateway.anvilcol.test", "127.0.0.1", "127.0.0.2")
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	first, err := r.LookupHost(ctx, "gateway.anvilcol.test")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("lookup took %v", d)
	}
	second, err := r.LookupHost(ctx, "gateway.anvilcol.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0] == second[0] {
		t.Errorf("answers %v then %v: want both addresses, in turn", first, second)
	}
	sort.Strings(first)
	if first[0] != "127.0.0.1" || first[1] != "127.0.0.2" {
		t.Errorf("addresses %v", first)
	}
	if _, err := r.LookupHost(ctx, "other.anvilcol.test"); err == nil {
		t.Error("another name resolved")
	}
	if _, err := r.LookupTXT(ctx, "_grpc_config.gateway.anvilcol.test"); err == nil {
		t.Error("a TXT record was served")
	}
}
