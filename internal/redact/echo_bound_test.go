package redact

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// hostileTokens returns n bytes of "Bearer tokNNNNN " with a distinct
// token each time: the longest message an error envelope is read for
// (64 KiB) holds some 4,000 of them.
func hostileTokens(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Bearer tok%05d ", i)
	}
	return b.String()[:n]
}

// TestEchoesBoundedWork checks that the work of Echoes grows with its text
// linearly: a server's message of 64 KiB holding thousands of distinct
// "Bearer <token>" made it copy the whole text once per token (some 4,000
// copies, 250 MB of garbage and half a second of CPU on each error
// response the Transport read), where it now allocates a few copies of
// the text at most. The work is counted in allocations and bytes, not in
// time.
func TestEchoesBoundedWork(t *testing.T) {
	s := hostileTokens(64 << 10)
	var out string
	if n := testing.AllocsPerRun(3, func() { out = Echoes(s, nil) }); n > 8 {
		t.Errorf("Echoes of %d bytes with %d tokens allocates %v times, want 8 at most", len(s), strings.Count(s, "Bearer"), n)
	}
	if strings.Contains(out, "tok0") {
		t.Errorf("Echoes left a token: %.80q", out)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	Echoes(s, nil)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(8*len(s)) {
		t.Errorf("Echoes of %d bytes allocates %d bytes, want %d at most", len(s), got, 8*len(s))
	}
}

// BenchmarkEchoesHostile measures Echoes on a 64 KiB message of tokens,
// distinct or one repeated, as a hostile server may send.
func BenchmarkEchoesHostile(b *testing.B) {
	for name, s := range map[string]string{
		"distinct": hostileTokens(64 << 10),
		"repeated": strings.Repeat("Bearer a1234567 ", 4<<10),
		"jwt":      strings.Repeat("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln ", 1600),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Echoes(s, nil)
			}
		})
	}
}

// TestEchoesBoundedWorkOverRequest checks that the work of Echoes does not
// grow with the number of credentials the request's URL or its cookies
// hold times the length of the text: the request a Transport sees may be
// one that http.Client made to follow a redirect, whose URL the server
// wrote (a Location of thousands of bot tokens, "/bot1:tok…/bot2:tok…"),
// or whose Cookie header its Set-Cookie filled through a jar. A server
// that then answered with a 64 KiB message echoing them made Echoes copy
// the whole text once per credential (thousands of copies, hundreds of
// MB of garbage and a CPU second per error response). Real requests hold
// one or two credentials; Echoes looks for a bounded number of each
// source's. The work is counted in allocations and bytes, not in time.
func TestEchoesBoundedWorkOverRequest(t *testing.T) {
	const echoed = 64 << 10
	build := func(format, sep string, n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, format, i, i)
			b.WriteString(sep)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		req  *http.Request
		msg  string
	}{
		{"path", &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test",
			Path: build("/bot%d:tok%07d", "", 256<<10)}}, build("bot%d:tok%07d", " ", echoed)},
		{"query", &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1",
			RawQuery: build("api_key=k%d-tok%07d", "&", 256<<10)}}, build("k%d-tok%07d", " ", echoed)},
		{"cookies", &http.Request{URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"},
			Header: http.Header{"Cookie": {build("c%d=k-tok%07d", "; ", 256<<10)}}}, build("c%d k-tok%07d", " ", echoed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.msg
			if n := testing.AllocsPerRun(1, func() { Echoes(s, tc.req) }); n > 40 {
				t.Errorf("Echoes of %d bytes allocates %v times, want 40 at most", len(s), n)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			Echoes(s, tc.req)
			runtime.ReadMemStats(&after)
			if got := after.TotalAlloc - before.TotalAlloc; got > uint64(40*len(s)) {
				t.Errorf("Echoes of %d bytes allocates %d bytes, want %d at most", len(s), got, 40*len(s))
			}
		})
	}
}
