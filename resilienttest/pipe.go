package resilienttest

import (
	"context"
	"errors"
	"net"
	"sync"
)

// errServerClosed is returned by a pipe server's dialer after Close.
var errServerClosed = errors.New("resilienttest: server closed")

// pipeListener is a net.Listener of in-memory connections: each dial makes
// a net.Pipe and hands its server end to Accept. Made inside a
// testing/synctest bubble, everything that blocks on it blocks durably, so
// fake time advances while the client and the server wait for each other.
type pipeListener struct {
	addr  pipeAddr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener(host string) *pipeListener {
	return &pipeListener{
		addr:  pipeAddr(host),
		conns: make(chan net.Conn),
		done:  make(chan struct{}),
	}
}

// Accept waits for the next dial.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and the dials.
func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns the server's host name.
func (l *pipeListener) Addr() net.Addr { return l.addr }

// dial returns the client end of a new connection to the server, whatever
// network and address it is asked for.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: l.addr, Err: errServerClosed}
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: l.addr, Err: ctx.Err()}
	}
}

// pipeAddr is the address of a pipe server: its host name.
type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }
