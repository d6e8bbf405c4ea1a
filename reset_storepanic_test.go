package resilient

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
)

// panickyResetQuota is a memQuota whose partition named name clears what
// it holds, then panics in Reset. Its partitions do not implement
// QuotaWatcher: the Transport's own waiters are woken by ResetHost alone.
type panickyResetQuota struct {
	m    *memQuota
	name string
}

func (q panickyResetQuota) Partition(name string) QuotaPartition {
	p := q.m.Partition(name).(*memPart)
	r := QuotaResetter(p)
	if name == q.name {
		r = panickyReset{p}
	}
	return struct {
		QuotaPartition
		QuotaResetter
	}{p, r}
}

type panickyReset struct{ *memPart }

func (p panickyReset) Reset() {
	p.memPart.Reset()
	panic("store exploded")
}

// TestResetHostStorePanicStillResets: a QuotaResetter whose Reset panics
// takes its panic to the caller of ResetHost, but only once ResetHost has
// done all it promises, as with a breaker observer's panic: the host's
// other partitions are cleared too, and the calls waiting for the pause of
// each go at once. Before, the panic cut ResetHost short, and both calls
// waited the 30s pause out.
func TestResetHostStorePanicStillResets(t *testing.T) {
	for _, name := range []string{"https://api.test reads", "https://api.test writes"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := throttlingServer("30")
				mem := new(memQuota)
				tr := New(handlerRT{srv}, WithMaxRetries(0), WithQuotaStore(panickyResetQuota{mem, name}))
				c := &http.Client{Transport: tr}
				for _, method := range []string{"GET", "POST"} {
					if code, _ := do(t, c, method, "https://api.test/throttle"); code != 429 {
						t.Fatalf("%s /throttle: %d, want 429", method, code)
					}
				}
				var wg sync.WaitGroup
				for _, method := range []string{"GET", "POST"} {
					wg.Go(func() {
						if code, err := do(t, c, method, "https://api.test/x"); code != 200 {
							t.Errorf("%s /x waiting for the pause: %d, %v; want 200 once the host was reset", method, code, err)
						}
					})
				}
				synctest.Wait()
				func() {
					defer func() {
						if p := recover(); p != "store exploded" {
							t.Errorf("ResetHost panicked with %v, want the store's panic", p)
						}
					}()
					tr.ResetHost("api.test")
				}()
				synctest.Wait()
				if n := len(srv.seen("/x")); n != 2 {
					t.Errorf("after ResetHost whose store's Reset of %q panicked: %d of the 2 waiting calls sent at once, want 2", name, n)
				}
				for _, p := range []string{"https://api.test reads", "https://api.test writes"} {
					if n := mem.part(p).resets; n != 1 {
						t.Errorf("%s reset %d times, want 1", p, n)
					}
				}
				wg.Wait()
			})
		})
	}
}
