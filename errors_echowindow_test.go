package resilient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// redirectedBotChain returns a request that http.Client made to follow
// hops redirects, each hop's URL a path of perHop bot tokens that the
// server wrote ("/bot1:tok…/bot2:tok…/…"), and the tokens of all of them.
func redirectedBotChain(hops, perHop int) (*http.Request, []string) {
	var req *http.Request
	var toks []string
	for h := 0; h <= hops; h++ {
		var p strings.Builder
		for i := 0; i < perHop; i++ {
			tok := fmt.Sprintf("bot%d:tok%02d%02dsecret", i+1, h, i)
			toks = append(toks, tok)
			p.WriteString("/" + tok)
		}
		next := &http.Request{Method: http.MethodGet, Header: http.Header{},
			URL: &url.URL{Scheme: "https", Host: "api.example.com", Path: p.String()}}
		if req != nil {
			next.Response = &http.Response{StatusCode: http.StatusFound, Request: req}
		}
		req = next
	}
	return req, toks
}

// allocatedBy returns the bytes allocated while fn ran.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestRedactionEchoesOfLongErrorBounded: a hostile server that redirects
// ten times to paths of bot tokens it wrote, then answers with a status
// line of megabytes (net/http quotes it whole in its error, up to its
// 10 MB header limit) that repeats them, had its text searched whole for
// each credential of each hop's request, some 350 times, before the
// message was cut to 1 KiB: 10 MB took 17 s of CPU within the attempt.
// The credentials are now looked for in the part of the text the message
// keeps. The work is counted in bytes allocated (each credential found
// copied the whole text), not in time.
func TestRedactionEchoesOfLongErrorBounded(t *testing.T) {
	req, toks := redirectedBotChain(10, 16)
	line := strings.Repeat("x", 1<<20) + strings.Join(toks, ",")
	cause := errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP status code "` + line + `"`)
	var atts []Attempt
	tr := New(&rtScript{steps: []rtStep{{err: cause}}}, WithMaxRetries(0),
		WithObserver(func(a Attempt) { atts = append(atts, a) }))
	var err error
	if got := allocatedBy(func() { _, err = tr.RoundTrip(req) }); got > uint64(8*len(line)) {
		t.Errorf("RoundTrip of an error of %d bytes allocated %d bytes, want %d at most", len(line), got, 8*len(line))
	}
	if err == nil {
		t.Fatal("RoundTrip succeeded, want the base's error")
	}
	if msg := err.Error(); len(msg) > 2*maxErrorText || strings.Contains(msg, "secret") {
		t.Errorf("RoundTrip's error = %.200q (%d bytes), want it bounded and without the tokens", msg, len(msg))
	}
	if len(atts) != 1 || len(atts[0].Err.Error()) > 2*maxErrorText {
		t.Errorf("observed %d attempts, want 1 with a bounded error", len(atts))
	}
}

// TestRedactionEchoesOfLongRequestIDBounded: the same server answering
// with a request id header of megabytes that repeats the tokens had it
// searched whole for each of them when its APIError was made, on every
// error response, and again for Attempt.RequestID; APIError.RequestID kept
// all of it. It is now cut past 1 KiB, its credentials looked for in the
// part kept.
func TestRedactionEchoesOfLongRequestIDBounded(t *testing.T) {
	req, toks := redirectedBotChain(10, 16)
	id := strings.Repeat("x", 1<<20) + strings.Join(toks, ",")
	var atts []Attempt
	tr := New(&rtScript{steps: []rtStep{{status: http.StatusBadRequest, header: http.Header{"X-Request-Id": {id}}}}},
		WithMaxRetries(0), WithObserver(func(a Attempt) { atts = append(atts, a) }))
	var resp *http.Response
	var err error
	if got := allocatedBy(func() { resp, err = tr.RoundTrip(req) }); got > uint64(8*len(id)) {
		t.Errorf("RoundTrip of a request id of %d bytes allocated %d bytes, want %d at most", len(id), got, 8*len(id))
	}
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	defer resp.Body.Close()
	if len(atts) != 1 || len(atts[0].RequestID) > 2*maxErrorToken || strings.Contains(atts[0].RequestID, "secret") {
		t.Errorf("observed %d attempts, want 1 with a bounded request id without the tokens", len(atts))
	}
	resp.Request = req
	e := ParseError(resp)
	if e == nil || len(e.RequestID) > maxErrorText || strings.Contains(e.RequestID, "secret") {
		t.Fatalf("ParseError's RequestID not cut past %d bytes, or holds a token", maxErrorText)
	}
}
