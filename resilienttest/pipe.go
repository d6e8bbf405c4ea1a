package resilienttest

import (
	"context"
	"errors"
	"net"
	"sync"
)

// pipeListener is a net.Listener of in-memory net.Pipe connections.
type pipeListener struct {
	conns    chan net.Conn
	done     chan struct{}
	once     sync.Once
	accepted func()
}

func newPipeListener(accepted func()) *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{}), accepted: accepted}
}

// errClosed is returned by a closed pipeListener.
var errClosed = errors.New("resilienttest: pipe server closed")

// Accept returns the server end of the next dialed pipe.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		l.accepted()
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting connections.
func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects a new pipe to the server.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		server.Close()
		return nil, errClosed
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
