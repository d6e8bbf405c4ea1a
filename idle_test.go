package resilient

import (
	"net/http"
	"testing"
)

type idleCloser struct {
	rtScript
	closed int
}

func (c *idleCloser) CloseIdleConnections() { c.closed++ }

func TestCloseIdleConnectionsReachesBase(t *testing.T) {
	base := &idleCloser{}
	client := &http.Client{Transport: New(base)}
	client.CloseIdleConnections()
	if base.closed != 1 {
		t.Errorf("base CloseIdleConnections called %d times, want 1", base.closed)
	}
	New(&rtScript{}).CloseIdleConnections() // a base without the method: no panic
}
