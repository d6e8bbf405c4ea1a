package resilientotel

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resilienthttp/resilient"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TestProtocolVersionNotTheServersToChoose: the HTTP version a server
// writes in its status line is not the version the client spoke. net/http's
// HTTP/1 client sends HTTP/1.1 and takes any "HTTP/X.Y" back, of 90
// versions from 1.0 to 9.9; recorded as network.protocol.version, a
// server's status lines would name a protocol that was never spoken, and
// multiply each status code's series of http.client.request.duration by
// up to 90 (81,000 series of one host and method, past the SDK's default
// limit of 2,000 per instrument, which sends every other host's series to
// its overflow). Only the versions a client speaks are recorded: 1.0 and
// 1.1 for an HTTP/1 answer (1.1 for a later HTTP/1 minor version), 2
// and 3.
func TestProtocolVersionNotTheServersToChoose(t *testing.T) {
	versions := []string{"HTTP/1.1", "HTTP/1.0", "HTTP/1.7", "HTTP/4.2", "HTTP/7.3", "HTTP/9.9", "HTTP/5.0"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		next atomic.Int32
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() { // a server that picks its status line's version
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					v := versions[int(next.Add(1)-1)%len(versions)]
					if _, err := fmt.Fprintf(conn, "%s 200 OK\r\nContent-Length: 2\r\n\r\n{}", v); err != nil {
						return
					}
				}
			}()
		}
	}()
	defer wg.Wait()
	defer ln.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	tel := newTelemetry()
	client := &http.Client{Transport: resilient.New(base, Instrument(tel.config()))}
	for range versions {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/posts", nil)
		if _, err := do(t, client, req); err != nil {
			t.Fatal(err)
		}
	}
	base.CloseIdleConnections()

	allowed := map[string]bool{"": true, "1.0": true, "1.1": true, "2": true, "3": true}
	seen := map[string]bool{}
	for _, s := range tel.ended(int(trace.SpanKindClient)) {
		seen[attrs(s.Attributes())["network.protocol.version"]] = true
	}
	for p := range histogramPoints(t, tel.metrics(t)["http.client.request.duration"]) {
		for _, kv := range strings.Split(p, ",") {
			if v, ok := strings.CutPrefix(kv, string(semconv.NetworkProtocolVersionKey)+"="); ok {
				seen[v] = true
			}
		}
	}
	var bad []string
	for v := range seen {
		if !allowed[v] {
			bad = append(bad, v)
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("network.protocol.version %q recorded from the servers' status lines; want only 1.0, 1.1, 2 or 3", bad)
	}
}
