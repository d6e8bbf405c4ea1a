package resilient

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file holds TestResponseParity: what a caller observes of a call that
// gets an answer is the same through New(base) as through base.

// parityBody returns n bytes of a JSON error envelope padded with spaces,
// or of text when not JSON.
func parityBody(n int, json bool) []byte {
	if !json {
		return bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	}
	b := []byte(`{"error":{"code":"bad_thing","message":"no"}}`)
	if n > len(b) {
		b = append(b, bytes.Repeat([]byte(" "), n-len(b))...)
	}
	return b
}

// parityLog records the requests a parity server saw, one line each: its
// method, path, the headers a redirect may drop or add, and its body.
type parityLog struct {
	mu   sync.Mutex
	hops []string
}

func (l *parityLog) handler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 64))
	r.Body = io.NopCloser(bytes.NewReader(b))
	l.mu.Lock()
	l.hops = append(l.hops, fmt.Sprintf("%s %s %s auth=%q cookie=%q referer=%q body=%q",
		r.Method, r.Host, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Cookie"), r.Header.Get("Referer"), b))
	l.mu.Unlock()
	parityHandler(w, r)
}

// take returns the lines recorded and forgets them.
func (l *parityLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.hops, "\n\t")
	l.hops = nil
	return s
}

// parityHandler answers each path of TestResponseParity. The query's
// status sets the status of the answer; n the length of its body; to
// where a redirect goes.
func parityHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status, _ := strconv.Atoi(q.Get("status"))
	if status == 0 {
		status = http.StatusOK
	}
	n, _ := strconv.Atoi(q.Get("n"))
	h := w.Header()
	switch r.URL.Path {
	case "/json": // headers of many spellings, a known length
		h.Set("Content-Type", "application/json")
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		h["x-non-canonical"] = []string{"v1", "v2"}
		h.Set("Content-Length", strconv.Itoa(len(parityBody(n, true))))
		w.WriteHeader(status)
		w.Write(parityBody(n, true))
	case "/text":
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		w.Write(parityBody(n, false))
	case "/chunked": // no length: chunked on HTTP/1.1
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		b := parityBody(n, true)
		half := len(b) / 2
		w.Write(b[:half])
		w.(http.Flusher).Flush()
		w.Write(b[half:])
	case "/empty":
		w.WriteHeader(status)
	case "/trailer":
		h.Set("Content-Type", "application/json")
		h.Set("Trailer", "X-Checksum, X-Count")
		w.WriteHeader(status)
		w.Write(parityBody(n, true))
		w.(http.Flusher).Flush()
		h.Set("X-Checksum", "abc")
		h.Set("X-Count", strconv.Itoa(n))
		h.Set(http.TrailerPrefix+"X-Late", "undeclared")
	case "/gzip": // gzipped when the client accepts it
		b := parityBody(n, true)
		h.Set("Content-Type", "application/json")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(b)
			zw.Close()
			b = buf.Bytes()
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(status)
		w.Write(b)
	case "/hints": // 103 Early Hints first
		h.Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(parityBody(n, true))
	case "/echo": // reads the request body (100 Continue), echoes it
		b, _ := io.ReadAll(r.Body)
		h.Set("Content-Type", "text/plain")
		h.Set("X-Request-Method", r.Method)
		w.WriteHeader(status)
		w.Write(b)
	case "/reject": // answers without reading the body
		h.Set("Content-Type", "application/json")
		h.Set("Connection", "close")
		w.WriteHeader(status)
		w.Write(parityBody(n, true))
	case "/redirect": // to q's "to", with the status
		if c := q.Get("cookie"); c != "" {
			http.SetCookie(w, &http.Cookie{Name: c, Value: "1", Path: "/"})
		}
		h.Set("Content-Type", "application/json")
		h.Set("Location", q.Get("to"))
		w.WriteHeader(status)
		w.Write(parityBody(n, true))
	case "/loop": // redirects to itself, forever
		h.Set("Location", "/loop")
		w.WriteHeader(http.StatusFound)
	case "/cookie": // sets a cookie on its answer
		http.SetCookie(w, &http.Cookie{Name: "final", Value: "2", Path: "/"})
		w.WriteHeader(status)
		w.Write([]byte(r.Header.Get("Cookie")))
	case "/cut": // a body cut short of its length
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", "100")
		w.WriteHeader(status)
		w.Write(parityBody(10, false))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	case "/close":
		h.Set("Connection", "close")
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		w.Write(parityBody(n, false))
	default:
		http.NotFound(w, r)
	}
}

// paritySide is one of the two clients of a parity scenario, with the
// trace its calls fired.
type paritySide struct {
	mu     sync.Mutex
	events []string
	wrote  chan struct{} // signaled by each WroteHeaders and WroteRequest
}

func newParitySide() *paritySide {
	return &paritySide{wrote: make(chan struct{}, 100)}
}

func (s *paritySide) add(name string) {
	s.mu.Lock()
	s.events = append(s.events, name)
	s.mu.Unlock()
	if name == "WroteHeaders" || name == "WroteRequest" {
		s.wrote <- struct{}{}
	}
}

// count returns how many times the hook name fired.
func (s *paritySide) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.events {
		if e == name {
			n++
		}
	}
	return n
}

// awaitWrites waits until every request the trace got a connection for
// was written, as its hooks say: HTTP/2 writes a request on a goroutine
// of its own, whose WroteHeaders and WroteRequest may fire after the
// answer was read. It gives up after a while: the comparison then tells.
func (s *paritySide) awaitWrites() {
	give := time.NewTimer(10 * time.Second)
	defer give.Stop()
	for s.count("WroteHeaders") < s.count("GotConn") || s.count("WroteRequest") < s.count("GotConn") {
		select {
		case <-s.wrote:
		case <-give.C:
			return
		}
	}
}

// clientTrace returns a trace that records every hook fired, by name.
func (s *paritySide) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn:              func(string) { s.add("GetConn") },
		GotConn:              func(httptrace.GotConnInfo) { s.add("GotConn") },
		GotFirstResponseByte: func() { s.add("GotFirstResponseByte") },
		Got100Continue:       func() { s.add("Got100Continue") },
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			s.add(fmt.Sprintf("Got1xxResponse(%d, %s)", code, h.Get("Link")))
			return nil
		},
		DNSStart:          func(httptrace.DNSStartInfo) { s.add("DNSStart") },
		DNSDone:           func(httptrace.DNSDoneInfo) { s.add("DNSDone") },
		ConnectStart:      func(string, string) { s.add("ConnectStart") },
		ConnectDone:       func(string, string, error) { s.add("ConnectDone") },
		TLSHandshakeStart: func() { s.add("TLSHandshakeStart") },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { s.add("TLSHandshakeDone") },
		WroteHeaders:      func() { s.add("WroteHeaders") },
		Wait100Continue:   func() { s.add("Wait100Continue") },
		WroteRequest:      func(httptrace.WroteRequestInfo) { s.add("WroteRequest") },
	}
}

// traceSummary returns the hooks fired, sorted, with their counts, or
// without them when perAttempt (a call of several attempts fires the
// hooks of each).
func (s *paritySide) traceSummary(perAttempt, racy bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[string]int{}
	for _, e := range s.events {
		if racy && (e == "WroteRequest" || e == "Wait100Continue" || e == "Got100Continue") {
			continue
		}
		counts[e]++
	}
	// A call of several requests (a redirect followed) may dial again for
	// a later one while net/http's read loop is still putting the first
	// connection back in its pool: how many dials that takes is
	// net/http's race, a plain client's too, not the caller's to observe.
	dials := counts["GetConn"] > 1
	var out []string
	for e, n := range counts {
		if perAttempt || dials && dialEvent(e) {
			out = append(out, e)
		} else {
			out = append(out, fmt.Sprintf("%s×%d", e, n))
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// dialEvent reports whether the trace hook e is fired by a new
// connection's dial or handshake.
func dialEvent(e string) bool {
	switch e {
	case "DNSStart", "DNSDone", "ConnectStart", "ConnectDone", "TLSHandshakeStart", "TLSHandshakeDone":
		return true
	}
	return false
}

// headerString returns h sorted, without the headers that change from one
// answer to the next.
func headerString(h http.Header) string {
	if h == nil {
		return "<nil>"
	}
	var keys []string
	for k := range h {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q;", k, h[k])
	}
	return b.String()
}

// respView is what a caller observes of a call: one string per check.
type respView map[string]string

// viewOf reads everything a caller may observe of the answer to req:
// the response's fields, its body to its end, its trailers, a Read after
// Close.
func viewOf(req *http.Request, resp *http.Response, err error) respView {
	v := respView{}
	if err != nil {
		v["error"] = fmt.Sprintf("error, response %v", resp != nil)
		if resp == nil {
			return v
		}
	} else {
		v["error"] = "nil"
	}
	v["status"] = resp.Status
	v["proto"] = fmt.Sprintf("%s %d.%d", resp.Proto, resp.ProtoMajor, resp.ProtoMinor)
	v["content-length"] = strconv.FormatInt(resp.ContentLength, 10)
	v["uncompressed"] = strconv.FormatBool(resp.Uncompressed)
	v["transfer-encoding"] = fmt.Sprint(resp.TransferEncoding)
	v["close"] = strconv.FormatBool(resp.Close)
	v["tls"] = "nil"
	if resp.TLS != nil {
		v["tls"] = fmt.Sprintf("version %x, proto %q", resp.TLS.Version, resp.TLS.NegotiatedProtocol)
	}
	v["header"] = headerString(resp.Header)
	switch {
	case resp.Request == nil:
		v["request"] = "nil"
	case resp.Request == req:
		v["request"] = "the caller's"
	default:
		v["request"] = fmt.Sprintf("another: %s %s, header %s", resp.Request.Method, resp.Request.URL, headerString(resp.Request.Header))
	}
	if resp.Request != nil {
		v["request context"] = strconv.FormatBool(resp.Request.Context() == req.Context())
	}
	v["body is http.NoBody"] = strconv.FormatBool(resp.Body == http.NoBody)
	_, wt := resp.Body.(io.WriterTo)
	v["body io.WriterTo (perf)"] = strconv.FormatBool(wt)
	_, rw := resp.Body.(io.ReadWriteCloser)
	v["body writable"] = strconv.FormatBool(rw)
	b, rerr := io.ReadAll(resp.Body)
	v["body"] = fmt.Sprintf("%d bytes, %x", len(b), hashBytes(b))
	v["body error"] = errClass(rerr)
	v["trailer"] = headerString(resp.Trailer)
	_, rerr = readOnce(resp.Body)
	v["read at EOF"] = errClass(rerr)
	resp.Body.Close()
	_, rerr = readOnce(resp.Body)
	v["read after EOF and close"] = errClass(rerr)
	return v
}

// earlyCloseView reads what a caller observes of a body it closes after a
// byte: a Read after Close fails with http.ErrBodyReadAfterClose.
func earlyCloseView(resp *http.Response, err error) respView {
	if err != nil {
		return respView{"error": "error"}
	}
	readOnce(resp.Body)
	resp.Body.Close()
	_, rerr := readOnce(resp.Body)
	return respView{"read after close": errClass(rerr)}
}

// errClass names the error a Read returned as a caller tells it.
func errClass(err error) string {
	switch {
	case err == nil:
		return "nil"
	case err == io.EOF:
		return "io.EOF"
	case errors.Is(err, http.ErrBodyReadAfterClose):
		return "http.ErrBodyReadAfterClose"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "io.ErrUnexpectedEOF"
	}
	var causes interface{ Unwrap() []error }
	if errors.Is(err, errBodyTruncated) && errors.As(err, &causes) {
		// The body of a held response broke before the Transport
		// let go of it: as the caller would have read it.
		return errClass(causes.Unwrap()[1])
	}
	return "other: " + streamID.ReplaceAllString(err.Error(), "stream ID N")
}

// streamID is the number of an HTTP/2 stream in an error: a call of
// several attempts ends on a later stream.
var streamID = regexp.MustCompile(`stream ID \d+`)

func readOnce(r io.Reader) (int, error) { return r.Read(make([]byte, 8)) }

// hashBytes is FNV-1a: enough to tell bodies apart in a message.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// parityScenario is one call of TestResponseParity.
type parityScenario struct {
	name    string
	method  string
	path    string // with its query
	header  http.Header
	body    string
	noGet   bool // a body without GetBody
	retried bool // ours makes several attempts: the trace fires per attempt
	// retriedBuffered: ours makes several attempts with
	// WithBufferedResponse, by design: a success whose body is cut
	// while read within the attempt is retried.
	retriedBuffered bool
	// racy: the server answers before it reads the request's body:
	// whether the client waited for a 100 Continue, and when it wrote
	// the request, depends on timing.
	racy bool
	// skip names checks that differ by design, with the reason;
	// heldSkip those that differ in the held mode only.
	skip, heldSkip map[string]string

	checkRedirect func(*http.Request, []*http.Request) error // the client's
	jar           bool                                       // the client has a cookie jar
	log           *parityLog                                 // what the server saw
}

// TestResponseParity: for each scenario (statuses, bodies of every size
// and shape, trailers, gzip, 1xx, Expect: 100-continue, error envelopes
// the Transport peeks at, retried or permanent), over HTTP/1.1, HTTPS and
// HTTP/2, with the default options and with WithBufferedResponse, every
// field a caller reads of the response of http.Client{Transport: New(base)}
// (its Request, lengths, protocol, TLS, headers, trailers after EOF, body
// bytes and errors, a Read after Close) and every httptrace hook it set,
// are those of http.Client{Transport: base}.
func TestResponseParity(t *testing.T) {
	if testing.Short() {
		t.Skip("real servers")
	}
	hops := new(parityLog)
	h1 := httptest.NewServer(http.HandlerFunc(hops.handler))
	h1tls := httptest.NewTLSServer(http.HandlerFunc(hops.handler))
	h2 := httptest.NewUnstartedServer(http.HandlerFunc(hops.handler))
	h2.EnableHTTP2 = true
	h2.StartTLS()
	for _, s := range []*httptest.Server{h1, h1tls, h2} {
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		t.Cleanup(s.Close)
	}
	big := DefaultMaxPeek + 10_000
	gz := http.Header{"Accept-Encoding": {"gzip"}}
	expect := http.Header{"Expect": {"100-continue"}}
	scenarios := []parityScenario{
		{name: "GET 200 json", path: "/json?n=100"},
		{name: "GET 200 empty", path: "/empty"},
		{name: "GET 200 large text", path: "/text?n=" + strconv.Itoa(big)},
		{name: "GET 200 chunked", path: "/chunked?n=5000"},
		{name: "GET 204", path: "/empty?status=204"},
		{name: "GET 304", path: "/empty?status=304"},
		{name: "HEAD 200", method: http.MethodHead, path: "/json?n=100"},
		{name: "HEAD 500", method: http.MethodHead, path: "/json?n=100&status=500", retried: true},
		{name: "GET 200 trailer", path: "/trailer?n=100"},
		{name: "GET 400 trailer (peeked)", path: "/trailer?n=100&status=400"},
		{name: "GET 503 trailer (retried)", path: "/trailer?n=100&status=503", retried: true},
		{name: "GET 400 json (peeked)", path: "/json?n=300&status=400"},
		{name: "GET 400 json larger than the peek", path: "/json?status=400&n=" + strconv.Itoa(big)},
		{name: "GET 400 chunked larger than the peek", path: "/chunked?status=400&n=" + strconv.Itoa(big)},
		{name: "GET 500 json (retried)", path: "/json?n=300&status=500", retried: true},
		{name: "GET 500 json larger than the peek (retried)", path: "/json?status=500&n=" + strconv.Itoa(big), retried: true,
			heldSkip: map[string]string{
				"body":        "a held answer is drained up to 64 KiB (documented: holdResponse)",
				"body error":  "past the 64 KiB drained, errBodyTruncated (documented)",
				"read at EOF": "errBodyTruncated, as above",
			}},
		{name: "GET 404 empty", path: "/empty?status=404"},
		{name: "GET 200 gzip transparent", path: "/gzip?n=3000"},
		{name: "GET 400 gzip transparent (peeked)", path: "/gzip?n=3000&status=400"},
		{name: "GET 500 gzip transparent (retried)", path: "/gzip?n=3000&status=500", retried: true},
		{name: "GET 200 gzip raw", path: "/gzip?n=3000", header: gz},
		{name: "GET 400 gzip raw (peeked)", path: "/gzip?n=3000&status=400", header: gz},
		{name: "GET 103 then 200", path: "/hints?n=10"},
		{name: "GET 103 then 422", path: "/hints?n=10&status=422"},
		{name: "GET Connection: close", path: "/close?n=10"},
		{name: "POST 200", method: http.MethodPost, path: "/echo", body: "hello"},
		{name: "POST 200 without GetBody", method: http.MethodPost, path: "/echo", body: "hello", noGet: true},
		{name: "POST 400", method: http.MethodPost, path: "/echo?status=400", body: `{"a":1}`},
		{name: "POST 100-continue", method: http.MethodPost, path: "/echo", body: "hello", header: expect},
		{name: "POST 100-continue rejected 417", method: http.MethodPost, path: "/reject?status=417&n=20", body: "hello", header: expect, racy: true},
		{name: "POST 100-continue early 200", method: http.MethodPost, path: "/reject?n=20", body: "hello", header: expect, racy: true},
		{name: "PUT 500 (retried)", method: http.MethodPut, path: "/echo?status=500", body: "hello", retried: true},
		{name: "GET 200 cut", path: "/cut", retriedBuffered: true},
		{name: "GET 400 cut (peeked)", path: "/cut?status=400"},
		{name: "GET 500 cut (retried)", path: "/cut?status=500", retried: true},
	}
	// Calls whose answers http.Client acts on: redirects, cookies.
	auth := http.Header{"Authorization": {"Bearer t0ken"}}
	for _, code := range []int{301, 302, 303, 307, 308} {
		to := "&to=/echo"
		scenarios = append(scenarios,
			parityScenario{name: fmt.Sprintf("POST %d", code), method: http.MethodPost, path: fmt.Sprintf("/redirect?status=%d&n=10%s", code, to), body: "hello"},
			parityScenario{name: fmt.Sprintf("POST %d without GetBody", code), method: http.MethodPost, path: fmt.Sprintf("/redirect?status=%d%s", code, to), body: "hello", noGet: true},
			parityScenario{name: fmt.Sprintf("GET %d to another host", code), path: fmt.Sprintf("/redirect?status=%d&to=//example.com:PORT/echo", code), header: auth},
			parityScenario{name: fmt.Sprintf("GET %d to the same host", code), path: fmt.Sprintf("/redirect?status=%d%s", code, to), header: auth},
		)
	}
	errRedirect := errors.New("no redirects")
	scenarios = append(scenarios,
		parityScenario{name: "GET redirect loop", path: "/loop"},
		parityScenario{name: "POST redirect loop", method: http.MethodPost, path: "/redirect?status=307&to=/loop", body: "hello"},
		parityScenario{name: "GET 302, ErrUseLastResponse", path: "/redirect?status=302&n=30&to=/echo",
			checkRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		parityScenario{name: "POST 307, CheckRedirect error", method: http.MethodPost, path: "/redirect?status=307&n=30&to=/echo", body: "hello",
			checkRedirect: func(*http.Request, []*http.Request) error { return errRedirect }},
		parityScenario{name: "GET cookies through a redirect", path: "/redirect?status=302&cookie=first&to=/cookie", jar: true},
		parityScenario{name: "POST 500 sets cookies (retried)", method: http.MethodPut, path: "/cookie?status=500", body: "x", jar: true, retried: true},
	)
	for i := range scenarios {
		scenarios[i].log = hops
	}
	servers := []struct {
		name string
		srv  *httptest.Server
	}{{"HTTP/1.1", h1}, {"HTTPS", h1tls}, {"HTTP/2", h2}}
	modes := []parityMode{
		{name: "default"},
		{name: "buffered", opts: []Option{WithBufferedResponse(1 << 20)}},
		{name: "hedged", opts: []Option{WithHedging(Hedging{Delay: time.Hour})}},
		{name: "cancelable context", cancelable: true},
		{name: "Client.Timeout", timeout: true},
		// The retry after a 5xx is refused by the open breaker: the
		// answer retried past, held, is the caller's.
		{name: "held", opts: []Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1})}},
	}
	for _, srv := range servers {
		for _, mode := range modes {
			if srv.name == "HTTPS" && mode.name != "default" && mode.name != "buffered" {
				continue // HTTP/1.1's, with TLS: its other modes add nothing
			}
			for _, sc := range scenarios {
				t.Run(srv.name+"/"+mode.name+"/"+sc.name, func(t *testing.T) {
					sc.retried = sc.retried || sc.retriedBuffered && mode.name == "buffered"
					plain, ours := runResponseParity(t, srv.srv, sc, mode, false)
					if mode.name == "held" {
						sc.skip = sc.heldSkip
					}
					compareViews(t, plain, ours, sc.skip)
					plain, ours = runResponseParity(t, srv.srv, sc, mode, true)
					compareViews(t, plain, ours, sc.skip)
				})
			}
		}
	}
}

// parityMode is how a scenario's call is made: the Transport's options,
// the caller's context and client.
type parityMode struct {
	name       string
	opts       []Option
	cancelable bool // the caller's context can be canceled
	timeout    bool // the client has a Timeout
}

// parityBase returns a transport to srv of its own, closed at the test's
// end.
func parityBase(t *testing.T, srv *httptest.Server) *http.Transport {
	base := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	dial := base.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	base.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, addr) // every host name is srv
	}
	base.ExpectContinueTimeout = 5 * time.Second
	t.Cleanup(base.CloseIdleConnections)
	return base
}

// runResponseParity makes the call of sc through a plain client and through ours,
// and returns what each caller observed.
func runResponseParity(t *testing.T, srv *httptest.Server, sc parityScenario, mode parityMode, early bool) (plain, ours respView) {
	t.Helper()
	opts := append([]Option{WithBackoff(0, 0), WithMaxRetries(2)}, mode.opts...)
	do := func(rt http.RoundTripper) respView {
		side := newParitySide()
		var body io.Reader
		if sc.body != "" {
			body = strings.NewReader(sc.body)
			if sc.noGet {
				body = io.MultiReader(body)
			}
		}
		method := sc.method
		if method == "" {
			method = http.MethodGet
		}
		ctx := httptrace.WithClientTrace(context.Background(), side.clientTrace())
		if mode.cancelable {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		path := strings.Replace(sc.path, "PORT", srv.URL[strings.LastIndexByte(srv.URL, ':')+1:], 1)
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range sc.header {
			req.Header[k] = v
		}
		client := &http.Client{Transport: rt, CheckRedirect: sc.checkRedirect}
		if mode.timeout {
			client.Timeout = time.Hour
		}
		if sc.jar {
			client.Jar, _ = cookiejar.New(nil)
		}
		sc.log.take()
		resp, err := client.Do(req)
		if early {
			return earlyCloseView(resp, err)
		}
		v := viewOf(req, resp, err)
		if !sc.racy {
			side.awaitWrites()
		}
		v["trace"] = side.traceSummary(sc.retried, sc.racy)
		if err != nil {
			v["error"] += ": " + strings.ReplaceAll(err.Error(), "resilient: ", "")
		}
		hops := sc.log.take()
		if !sc.retried {
			v["requests the server saw"] = hops
		}
		if client.Jar != nil {
			v["cookies"] = fmt.Sprint(client.Jar.Cookies(req.URL))
		}
		return v
	}
	plain = do(parityBase(t, srv))
	ours = do(New(parityBase(t, srv), opts...))
	return plain, ours
}

// compareViews reports every check whose result differs, but those skipped
// by design.
func compareViews(t *testing.T, plain, ours respView, skip map[string]string) {
	t.Helper()
	var names []string
	for k := range plain {
		names = append(names, k)
	}
	for k := range ours {
		if _, ok := plain[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := skip[k]; ok {
			continue
		}
		if plain[k] != ours[k] {
			t.Errorf("%s:\n ours  %s\n plain %s", k, ours[k], plain[k])
		}
	}
}

// TestResponseRequestOfBase: a base RoundTripper below the Transport that
// sends a copy of its own (made with Request.Clone, as a signing SDK adds
// its signature to one) and
// makes it the response's Request keeps it there, as under a plain client
// over that base: ParseError redacts the credential the base added when
// the server echoes it. The Transport's own copies are the caller's
// request again (TestResponseParity).
func TestResponseRequestOfBase(t *testing.T) {
	const secret = "k3y-0123456789abcdef" // no known token shape: redacted as the request's own
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		signed := r.Clone(r.Context())
		signed.Header.Set("X-Api-Key", secret)
		body := `{"error":{"code":"invalid_api_key","message":"invalid api key ` + secret + `"}}`
		return &http.Response{StatusCode: 401, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: signed}, nil
	})
	for name, rt := range map[string]http.RoundTripper{"plain": base, "resilient": New(base)} {
		req, _ := http.NewRequest("GET", "https://api.test/v1/me", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		e := ParseError(resp)
		resp.Body.Close()
		if e == nil || strings.Contains(e.Message, secret) || !strings.Contains(e.Message, "invalid api key") {
			t.Errorf("%s: ParseError = %+v; want the message without the base's key", name, e)
		}
		if resp.Request == req || resp.Request.Header.Get("X-Api-Key") != secret {
			t.Errorf("%s: resp.Request is not the base's own request", name)
		}
	}
}
