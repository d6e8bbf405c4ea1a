package resilientotel

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// closingConn is a connection whose server closes it, without a word,
// when eof is closed: its reads end with io.EOF.
type closingConn struct {
	eof       chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func newClosingConn() *closingConn {
	return &closingConn{eof: make(chan struct{}), closed: make(chan struct{})}
}

func (c *closingConn) Read([]byte) (int, error) {
	select {
	case <-c.eof:
		return 0, io.EOF
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *closingConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
		return len(p), nil
	}
}

func (c *closingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (*closingConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}

func (*closingConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
}

func (*closingConn) SetDeadline(time.Time) error      { return nil }
func (*closingConn) SetReadDeadline(time.Time) error  { return nil }
func (*closingConn) SetWriteDeadline(time.Time) error { return nil }

// closedBeforeSent returns a request whose context makes the server close
// the connection net/http got for it, and waits until net/http saw it
// close, before the request is written: net/http then fails the request
// with its "http: server closed idle connection" (its errServerClosedIdle,
// the error of a request it cannot send again on a new connection, such as
// a POST without an idempotency key, or one on a new connection), as it
// does when a server closes a connection as the request is about to go.
// It must run in a synctest bubble.
func closedBeforeSent(t *testing.T, conn *closingConn, method string) *http.Request {
	t.Helper()
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			close(conn.eof)
			<-conn.closed
			synctest.Wait() // net/http's read and write loops are gone
		},
	})
	req, err := http.NewRequestWithContext(ctx, method, "http://api.test/v1/posts", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestErrorTypeServerClosedConnection: a server that closes the
// connection before answering makes net/http fail the request with "http:
// server closed idle connection", whatever the connection's age; its
// error.type is connection_closed, as the package documentation names the
// failure ("the server closed the connection before answering"), on the
// CLIENT span, the call's span and http.client.request.duration, not
// _OTHER.
func TestErrorTypeServerClosedConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn := newClosingConn()
		base := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
		defer base.CloseIdleConnections()

		// net/http's own error, first.
		_, err := base.RoundTrip(closedBeforeSent(t, conn, http.MethodPost))
		if err == nil || err.Error() != "http: server closed idle connection" {
			t.Fatalf("net/http's error: %v, want its errServerClosedIdle", err)
		}
		if got := errorType(err); got != errConnClosed {
			t.Errorf("errorType(%v) = %q, want %q", err, got, errConnClosed)
		}

		// Through the Transport: a POST the write rule does not resend.
		tel := newTelemetry()
		conn = newClosingConn()
		tr := resilient.New(base, Instrument(tel.config()))
		if _, err := tr.RoundTrip(closedBeforeSent(t, conn, http.MethodPost)); err == nil {
			t.Fatal("no error")
		}
		spans := tel.ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans, want the attempt's and the call's", len(spans))
		}
		for _, s := range spans {
			if got := attrs(s.Attributes())["error.type"]; got != errConnClosed {
				t.Errorf("%s span: error.type = %q, want %q", s.SpanKind(), got, errConnClosed)
			}
		}
		ms := tel.metrics(t)
		for set := range histogramPoints(t, ms["http.client.request.duration"]) {
			if want := "error.type=" + errConnClosed; !slices.Contains(strings.Split(set, ","), want) {
				t.Errorf("http.client.request.duration attributes %s, want %s", set, want)
			}
		}
	})
}
