package resilient

import (
	"context"
	"net/http/httptrace"
	"sync"
	"time"
)

// This file holds the contexts of an attempt: under a deadline (attemptCtx)
// and with a write trace (traceCtx), and the context keys they answer.

// attemptCtx is the context of an attempt under a deadline whose caller's
// context is never canceled (its Done is nil): it is done when the deadline
// fires (Err is context.DeadlineExceeded) or when the attempt's response is
// closed or dropped (context.Canceled). Its values are its parent's, and
// the attempt's write trace when it has one (see clientTraceKey). It costs
// no allocation of its own: it lives in the attempt's deadlineBody, and
// makes its Done channel only when asked for one.
//
// It implements the AfterFunc method that the context package looks for in
// a parent, so that a context derived from it (http.Transport derives one
// per request) is canceled with it without a goroutine of its own; the
// functions registered run synchronously when it is canceled, after its
// lock is released.
type attemptCtx struct {
	parent context.Context        // the caller's; its Done is nil when this context is the attempt's
	end    time.Time              // zero while not known: see readyDeadline
	trace  *httptrace.ClientTrace // the attempt's write trace; nil for none

	mu    sync.Mutex
	done  chan struct{} // made on demand
	err   error
	n     int      // functions registered with AfterFunc
	first func()   // the first of them (net/http registers one): no slice for it
	more  []func() // the others; nil entries, and a nil first, were stopped
}

func (c *attemptCtx) Deadline() (time.Time, bool) { return c.end, !c.end.IsZero() }

func (c *attemptCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *attemptCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *attemptCtx) Value(key any) any {
	if c.trace != nil && key == clientTraceKey {
		return c.trace
	}
	return c.parent.Value(key)
}

// traceCtx is a context that carries an attempt's write trace over its
// parent, as httptrace.WithClientTrace would over a parent with no trace of
// its own, and the key the Transport stamped on it, when it drew that key
// itself (see stampedKey), without an allocation of its own: it
// lives in the attempt's attemptExtras.
type traceCtx struct {
	context.Context
	trace   *httptrace.ClientTrace // nil for none: the parent's, if any
	stamped string                 // "" for none
	own     bool                   // stamped is the caller's own key (see call.ownKey)
}

func (c *traceCtx) Value(key any) any {
	switch {
	case key == clientTraceKey && c.trace != nil:
		return c.trace
	case key == stampedKey{} && c.stamped != "":
		return c.stamped
	case key == ownStampKey{} && c.stamped != "":
		return c.own
	}
	return c.Context.Value(key)
}

// AfterFunc registers f to run once c is done, as its parent's AfterFunc
// does when it has one: a context derived from c (the deadline's, or
// http.Transport's) then follows such a parent (an attemptCtx of a
// Transport above, a caller's own context) without a goroutine of its own,
// as it would follow the parent itself. A parent made by the context
// package is found through Value, before this method is looked for.
func (c *traceCtx) AfterFunc(f func()) (stop func() bool) { return afterFunc(c.Context, f) }

// afterFunc registers f to run once parent is done: through parent's own
// AfterFunc method when it has one, else context.AfterFunc. The contexts
// that wrap a parent to carry a value of their own (traceCtx,
// attemptValues) forward their AfterFunc to it.
func afterFunc(parent context.Context, f func()) (stop func() bool) {
	if a, ok := parent.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(parent, f)
}

// stampedKey is the context key under which an attempt of a write carries
// the idempotency key the Transport drew for it and stamped on it (not one
// the caller set). A Transport below it, given
// the attempt as its own call, reads it: that key is not the caller's, and
// implies nothing of the host (see Transport.idempotencyKey).
type stampedKey struct{}

// ownStampKey is the context key under which an attempt that carries a
// stamped key (see stampedKey) tells whether that key is the caller's
// own, carried on by http.Client through a redirect (see call.ownKey):
// a Transport below learns nothing of the host from the answers to it.
type ownStampKey struct{}

// clientTraceKey is the key under which net/http/httptrace keeps a
// ClientTrace in a context, learned by asking a context that records it:
// an attemptCtx answers it with its write trace, which then costs no
// context of its own (see call.attemptRequest). It is set once, when the
// package is initialized.
var clientTraceKey = func() any {
	var p keyProbe
	httptrace.ContextClientTrace(&p)
	return p.key
}()

// keyProbe is a context that records the key it is asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

// AfterFunc arranges for f to run once c is done, and returns a function
// that unregisters it, reporting whether it did so before f ran.
func (c *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		// The context package calls AfterFunc with a lock held that f
		// takes: f may not run on this goroutine.
		go f()
		return func() bool { return false }
	}
	i := c.n
	c.n++
	if i == 0 {
		c.first = f
	} else {
		c.more = append(c.more, f)
	}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			return false // cancel runs it, or ran it
		}
		slot := &c.first
		if i > 0 {
			slot = &c.more[i-1]
		}
		if *slot == nil {
			return false
		}
		*slot = nil
		return true
	}
}

// cancel makes c done with err, unless it is done already, and runs the
// functions registered with AfterFunc.
func (c *attemptCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	first, more := c.first, c.more
	c.first, c.more = nil, nil
	c.mu.Unlock()
	if first != nil {
		first()
	}
	for _, f := range more {
		if f != nil {
			f()
		}
	}
}

func (c *attemptCtx) String() string { return "resilient.attemptCtx" }
