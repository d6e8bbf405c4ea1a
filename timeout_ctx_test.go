package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

type attemptCtxKey struct{}

// TestAttemptCtx checks the context of an attempt under a deadline whose
// caller's context is never canceled: a context.Context as the context
// package defines one, whose derived contexts (http.Transport derives one
// per request) are canceled with it and release their registration when
// they end first.
func TestAttemptCtx(t *testing.T) {
	parent := context.WithValue(context.Background(), attemptCtxKey{}, "v")
	end := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	newCtx := func() *attemptCtx { return &attemptCtx{parent: parent, end: end} }

	c := newCtx()
	if d, ok := c.Deadline(); !ok || !d.Equal(end) {
		t.Errorf("Deadline() = %v, %v; want %v, true", d, ok, end)
	}
	if c.Value(attemptCtxKey{}) != "v" {
		t.Errorf("Value = %v, want the parent's", c.Value(attemptCtxKey{}))
	}
	if c.Err() != nil {
		t.Errorf("Err() = %v before the deadline", c.Err())
	}
	child, cancelChild := context.WithCancelCause(c)
	done := c.Done()
	select {
	case <-done:
		t.Fatal("Done is closed before the deadline")
	default:
	}
	c.cancel(context.DeadlineExceeded)
	select {
	case <-done:
	default:
		t.Fatal("Done is open after the deadline")
	}
	if c.Done() != done {
		t.Error("Done returned another channel")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Errorf("Err() = %v, Cause = %v; want DeadlineExceeded", c.Err(), context.Cause(c))
	}
	// The derived context was canceled with it, synchronously.
	if !errors.Is(child.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(child), context.DeadlineExceeded) {
		t.Errorf("derived context: Err() = %v, Cause = %v; want DeadlineExceeded", child.Err(), context.Cause(child))
	}
	cancelChild(nil)
	c.cancel(context.Canceled) // a second cancel changes nothing
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("Err() = %v after a second cancel, want DeadlineExceeded", c.Err())
	}

	// A derived context that ends first unregisters itself.
	c = newCtx()
	child, cancelChild = context.WithCancelCause(c)
	cancelChild(errors.New("done early"))
	if c.n != 1 || c.first != nil || c.more != nil {
		t.Errorf("registrations after the derived context ended: %d (first stopped: %v), want 1 stopped", c.n, c.first == nil)
	}
	c.cancel(context.Canceled)
	if !strings.Contains(context.Cause(child).Error(), "done early") {
		t.Errorf("derived context's cause = %v, want its own", context.Cause(child))
	}

	// context.AfterFunc works on it, and its stop unregisters: the first
	// function registered (held apart from the others) and a later one.
	c = newCtx()
	ran := make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })
	stop := context.AfterFunc(c, func() { t.Error("a stopped AfterFunc ran") })
	if !stop() {
		t.Error("stop() = false before the context ended")
	}
	if stop() {
		t.Error("stop() = true the second time")
	}
	c.cancel(context.Canceled)
	<-ran
	if stop() {
		t.Error("stop() = true after the context ended")
	}
	c = newCtx()
	stopFirst := context.AfterFunc(c, func() { t.Error("the stopped first AfterFunc ran") })
	later := make(chan int, 4)
	for i := range 3 {
		context.AfterFunc(c, func() { later <- i })
	}
	if !stopFirst() {
		t.Error("the first stop() = false before the context ended")
	}
	c.cancel(context.Canceled)
	got := map[int]bool{}
	for range 3 {
		got[<-later] = true // context.AfterFunc runs each on a goroutine of its own
	}
	if len(got) != 3 {
		t.Errorf("later functions ran: %v, want 0, 1 and 2", got)
	}
	if stopFirst() {
		t.Error("the first stop() = true after the context ended")
	}

	// Done asked for after the end is closed.
	c = newCtx()
	c.cancel(context.Canceled)
	select {
	case <-c.Done():
	default:
		t.Error("Done asked for after the end is open")
	}
	// Registering on an ended context runs the function all the same.
	ran = make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })
	<-ran
}

// TestAttemptDeadlineContexts checks the context an attempt under the
// call's budget gets, whether the deadline middleware made it (a GET) or
// the retry loop readied it (a POST, whose request it copies): its own
// attemptCtx when the caller's context can never be canceled, one derived
// from the caller's otherwise; in both cases
// the deadline cuts a hung attempt with the budget's cause, the caller's
// cancellation reaches the attempt, and a response handed over is never
// cut, however long it is read.
func TestAttemptDeadlineContexts(t *testing.T) {
	type parentKind struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		own  bool
	}
	kinds := []parentKind{
		{"background", func() (context.Context, context.CancelFunc) {
			return context.WithValue(context.Background(), attemptCtxKey{}, "v"), func() {}
		}, true},
		{"cancelable", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.WithValue(context.Background(), attemptCtxKey{}, "v"))
		}, false},
	}
	for _, k := range kinds {
		for _, method := range readyMethods {
			t.Run(method+"/"+k.name+"/cut", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := k.ctx()
					defer cancel()
					var seen context.Context
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						seen = req.Context()
						<-req.Context().Done()
						return nil, context.Cause(req.Context())
					})
					start := time.Now()
					_, err := roundTrip(t, New(base, WithMaxElapsed(time.Second)), newRequest(t, ctx, method, "http://api.test/", nil))
					if !errors.Is(err, errBudgetSpent) {
						t.Errorf("err = %v, want the budget's cause", err)
					}
					if d := time.Since(start); d != time.Second {
						t.Errorf("cut after %v, want 1s", d)
					}
					if _, own := seen.(*attemptCtx); own != k.own {
						t.Errorf("attempt context %T, own = %v; want %v", seen, own, k.own)
					}
					if seen.Value(attemptCtxKey{}) != "v" {
						t.Error("the attempt's context lost the caller's values")
					}
				})
			})
			t.Run(method+"/"+k.name+"/handed-over", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := k.ctx()
					defer cancel()
					var body *stallBody
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						body = newStallBody(req.Context(), "hello")
						return &http.Response{StatusCode: 200, Body: body, Request: req}, nil
					})
					tr := New(base, WithMaxElapsed(time.Second))
					resp, err := roundTrip(t, tr, newRequest(t, ctx, method, "http://api.test/", nil))
					if err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Hour) // far past the budget: the body is the caller's
					buf := make([]byte, 5)
					if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "hello" {
						t.Errorf("read %q, %v after the budget; want hello", buf, err)
					}
					if err := body.ctx.Err(); err != nil {
						t.Errorf("the attempt's context ended (%v) before the body was closed", err)
					}
					resp.Body.Close()
					if body.ctx.Err() == nil {
						t.Error("closing the body left the attempt's context live")
					}
				})
			})
		}
	}
	t.Run("caller-cancels", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				<-req.Context().Done()
				return nil, context.Cause(req.Context())
			})
			time.AfterFunc(time.Second, cancel)
			_, err := roundTrip(t, New(base, WithMaxElapsed(time.Minute)), newRequest(t, ctx, "GET", "http://api.test/", nil))
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrAttemptTimeout) {
				t.Errorf("err = %v, want the caller's cancellation", err)
			}
		})
	})
}

// TestAttemptDeadlineFiredThenNot: attempts cut by their deadline alternate
// with attempts that end just before theirs; none of the latter is cut.
func TestAttemptDeadlineFiredThenNot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls int
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			calls++
			if calls%3 == 1 { // the base's 1st, 4th, 7th… attempts
				// Hangs: cut by the attempt timeout; the retry follows.
				<-req.Context().Done()
				return nil, context.Cause(req.Context())
			}
			// Takes 900ms of the attempt's 1s.
			select {
			case <-time.After(900 * time.Millisecond):
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
		})
		tr := New(base, WithAttemptTimeout(time.Second), WithBackoff(time.Millisecond, time.Millisecond), WithoutRetryBudget())
		for i := range 20 {
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			resp.Body.Close()
		}
	})
}

// watchBody returns a deadlineBody with its own context, as the middleware
// makes for a caller's context that is never canceled.
func watchBody() *deadlineBody {
	db := new(deadlineBody)
	db.own.parent = context.Background()
	return db
}

// TestDeadlineWatch checks the shared timer of a chain's deadlines, in real
// time (it does not run in a bubble): deadlines fire, those released
// before do not, the timer is reset only for an earlier deadline, and an
// attempt finding no free slot gets a timer of its own.
func TestDeadlineWatch(t *testing.T) {
	t.Parallel()
	var w deadlineWatch
	now := time.Now()
	var dbs []*deadlineBody
	for i := range 40 {
		db := watchBody()
		if i%2 == 1 {
			// Handed over (its deadline no longer matters) before its
			// deadline could pass, whatever the machine's load: kept
			// first, so that the sweep finds it due in its slot, as
			// one that finds a body handed over as it sweeps.
			db.keep()
		}
		w.arm(db, nil, now, now.Add(time.Duration(i%8+1)*time.Millisecond))
		if db.watch != &w || db.slot < 0 || db.timer != nil {
			t.Fatalf("attempt %d got a timer of its own with free slots", i)
		}
		dbs = append(dbs, db)
	}
	// The earliest deadline, 1ms, may pass while a loaded machine runs
	// this test (in real time): its sweep then moves the timer on (to 0
	// while it scans), and the timer's place says nothing of arm. The
	// checks hold while it has not fired.
	swept := func(got int64) bool { return got == 0 || dbs[0].state.Load() != deadlineRunning }
	if got, want := w.next.Load(), int64(time.Millisecond); got != want && !swept(got) {
		t.Errorf("the timer is set at %v, want the earliest deadline, %v", time.Duration(got), time.Duration(want))
	}
	// A later deadline leaves the timer alone; an earlier one moves it.
	late := watchBody()
	w.arm(late, nil, now, now.Add(time.Hour))
	if got := w.next.Load(); got != int64(time.Millisecond) && !swept(got) {
		t.Errorf("a later deadline moved the timer to %v", time.Duration(got))
	}
	for i, db := range dbs {
		if i%2 == 0 {
			select {
			case <-db.own.Done():
			case <-time.After(time.Minute):
				t.Fatalf("deadline %d never fired", i)
			}
			if !errors.Is(db.own.Err(), context.DeadlineExceeded) {
				t.Errorf("deadline %d: Err() = %v, want DeadlineExceeded", i, db.own.Err())
			}
		}
	}
	// The sweep that fired the last of them has run; the kept ones were
	// never fired, and only the hour-long deadline is left.
	for w.next.Load() != late.end {
		time.Sleep(time.Millisecond)
	}
	for i, db := range dbs {
		if i%2 == 1 && (db.state.Load() != deadlineKept || db.own.Err() != nil) {
			t.Errorf("kept deadline %d: state %d, Err() %v; want kept, live", i, db.state.Load(), db.own.Err())
		}
	}
	late.keep()

	// Every slot taken: a timer of its own.
	var full deadlineWatch
	for i := range full.slots {
		full.slots[i].Store(watchBody())
	}
	db := watchBody()
	full.arm(db, nil, now, now.Add(time.Hour))
	if db.slot >= 0 || db.timer == nil {
		t.Error("with every slot taken, the attempt got no timer of its own")
	}
	db.keep()
	if db.timer.Stop() {
		t.Error("keep left the attempt's own timer running")
	}
}

// TestDeadlineWatchConcurrent arms and releases deadlines from many
// goroutines at once, in real time: every deadline not released fires.
func TestDeadlineWatchConcurrent(t *testing.T) {
	t.Parallel()
	var w deadlineWatch
	const goroutines, each = 8, 200
	errs := make(chan error, goroutines)
	for g := range goroutines {
		go func() {
			var pending []*deadlineBody
			for i := range each {
				db := watchBody()
				now := time.Now()
				w.arm(db, nil, now, now.Add(time.Duration((g+i)%5)*time.Millisecond+100*time.Microsecond))
				if i%3 == 0 {
					db.keep()
				} else {
					pending = append(pending, db)
				}
			}
			for _, db := range pending {
				select {
				case <-db.own.Done():
				case <-time.After(time.Minute):
					errs <- errors.New("a deadline never fired")
					return
				}
			}
			errs <- nil
		}()
	}
	for range goroutines {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttemptDeadlineRealTime: outside a bubble, through a Transport, the
// attempt timeout cuts a hung attempt through the chain's watch.
func TestAttemptDeadlineRealTime(t *testing.T) {
	t.Parallel()
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		<-req.Context().Done()
		return nil, context.Cause(req.Context())
	})
	tr := New(base, WithoutRateLimit(), WithoutBreaker(), WithMaxRetries(0), WithAttemptTimeout(5*time.Millisecond))
	_, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if !errors.Is(err, ErrAttemptTimeout) {
		t.Errorf("err = %v, want ErrAttemptTimeout", err)
	}
	if ad, ok := tr.inner.rt.(*attemptDeadline); !ok || ad.watch.epoch.Load() == nil {
		t.Errorf("the chain's watch was not used (inner %T)", tr.inner.rt)
	}
}

// TestDeadlineWatchTimerFromTheClock: a deadline that gets a timer of its
// own (always in a bubble, and when every slot of the watch is taken)
// fires at its end, however long before the attempt started: the timer
// was set for end minus the attempt's start from the moment it was armed,
// late by whatever the attempt waited in between.
func TestDeadlineWatchTimerFromTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w deadlineWatch
		db := watchBody()
		now := time.Now()
		w.arm(db, nil, now.Add(-900*time.Millisecond), now.Add(100*time.Millisecond))
		time.Sleep(150 * time.Millisecond)
		if !errors.Is(db.own.Err(), context.DeadlineExceeded) {
			t.Errorf("50ms after its end: Err() = %v, want DeadlineExceeded", db.own.Err())
		}
		db.keep()
	})
}
