package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestRecordPropertyMatchesTheWire runs the random cases of
// TestContractProperty with an observer and a Tracer, and checks that what
// each call records agrees with what the base saw: the records, the
// Report, the Tracer's EndCall and the *Error count the same attempts and
// hedged copies, the last record says what the Report says, the waits and
// durations of the records fit the Report's, each attempt sent carries the
// key and status its record says, the Tracer numbers the requests sent
// as the base saw them, the log has one record per observed attempt at the
// level WithLogger documents (and one more for a wait the caller's cancel
// ended), a call a panic went through is reported as Report documents,
// and HostState shows nothing left in flight once the calls ended.
func TestRecordPropertyMatchesTheWire(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 60
	}
	for i := range n {
		c := drawContractCase(uint64(20270101) + uint64(i))
		synctest.Test(t, func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("failed case: %s", c)
				}
			})
			runRecordCase(t, c)
		})
		if t.Failed() {
			return
		}
	}
}

// recordCallID is the context key of a call's id in runRecordCase, which
// the observers, the Tracer and the logger read.
type recordCallID struct{}

// recordResult is what one call of runRecordCase returned.
type recordResult struct {
	rep      Report
	err      error
	panicked any
}

// runRecordCase makes the calls of c and checks what each recorded.
func runRecordCase(t *testing.T, c *contractCase) {
	base := &cbase{steps: c.steps, byCall: map[string][]*cseen{}, bodies: map[string][]byte{}}
	var mu sync.Mutex
	recs := map[string][]Attempt{}
	opts := append(append([]Option(nil), c.opts...), WithContextObserver(func(ctx context.Context, a Attempt) {
		id, _ := ctx.Value(recordCallID{}).(string)
		mu.Lock()
		recs[id] = append(recs[id], a)
		mu.Unlock()
	}))
	logs := &callLogs{byCall: map[string][]map[string]any{}}
	opts = append(opts, WithLogger(slog.New(logs)))
	rt := &recordPropTracer{infos: map[string][]AttemptInfo{}, ends: map[string][]Report{}}
	opts = append(opts, WithTracer(rt))
	tr := New(base, opts...)
	const url = "http://api.contract.test/v1/posts"
	results := make([]recordResult, len(c.calls))
	run := func(i int, call ccall) {
		id := strconv.Itoa(i)
		ctx := context.WithValue(context.Background(), recordCallID{}, id)
		if call.callElapsed > 0 {
			ctx = WithCallOptions(ctx, WithMaxElapsed(call.callElapsed))
		}
		if call.deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, call.deadline)
			defer cancel()
		}
		if call.cancelAfter != 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			if call.cancelAfter < 0 {
				cancel()
			} else {
				tm := time.AfterFunc(call.cancelAfter, cancel)
				defer tm.Stop()
			}
		}
		if call.callRetries >= 0 {
			ctx = WithCallOptions(ctx, WithMaxRetries(call.callRetries))
		}
		switch {
		case call.callHedges < 0:
			ctx = WithCallOptions(ctx, WithoutHedging())
		case call.callHedges > 0:
			ctx = WithCallOptions(ctx, WithHedging(Hedging{Delay: 20 * time.Millisecond, MaxHedges: call.callHedges}))
		}
		if call.ctxKey {
			ctx = WithIdempotencyKey(ctx, "ctx-"+id)
		}
		r := &results[i]
		ctx = WithReport(ctx, &r.rep)
		var body io.Reader
		if call.body != "" {
			body = strings.NewReader(`{"text":"hello"}`)
		}
		req := newRequest(t, ctx, call.method, url, body)
		req.Header.Set("X-Contract-Call", id)
		if call.callerKey {
			req.Header.Set("Idempotency-Key", "caller-"+id)
		}
		defer func() { r.panicked = recover() }()
		resp, err := tr.RoundTrip(req)
		r.err = err
		if resp != nil {
			resp.Body.Close()
		}
	}
	c.makeCalls(run, true)
	if hs, err := tr.HostState(newRequest(t, context.Background(), "GET", url, nil)); err != nil ||
		hs.InFlight > 0 || hs.Waiting > 0 || hs.Reads.InFlight != 0 || hs.Writes.InFlight != 0 {
		t.Errorf("after the calls: HostState %+v, %v; want nothing in flight", hs, err)
	}
	for i, call := range c.calls {
		where := fmt.Sprintf("call %d (%s)", i, call)
		checkRecords(t, where, strconv.Itoa(i), results[i], base, recs, rt)
		checkLogs(t, where, call, results[i], recs[strconv.Itoa(i)], logs.byCall[strconv.Itoa(i)])
	}
}

// checkRecords compares what call id recorded with what the base saw.
func checkRecords(t *testing.T, where, id string, r recordResult, base *cbase, recs map[string][]Attempt, rt *recordPropTracer) {
	t.Helper()
	rep := r.rep
	got := recs[id]
	if r.panicked != nil {
		if rep.Outcome != "" || rep.StopReason != "" || rep.StatusCode != 0 || rep.Attempts < len(got) || rep.Attempts < len(base.byCall[id]) {
			t.Errorf("%s: panicked (%v): Report %+v, %d records, the base saw %d", where, r.panicked, rep, len(got), len(base.byCall[id]))
		}
		if ends := rt.ends[id]; len(ends) != 1 || ends[0] != rep {
			t.Errorf("%s: panicked: EndCall got %+v, the Report %+v", where, ends, rep)
		}
		return
	}
	seenList := base.byCall[id]
	seen := len(seenList)
	hedges, sent, canceled := 0, 0, 0
	var waited, spent time.Duration
	for j, a := range got {
		hedges += a.Hedges
		waited += a.LocalWait + a.SlotWait + a.Delay
		spent += a.Duration + a.Delay
		if a.Number != j+1 {
			t.Errorf("%s: record %d has Number %d", where, j, a.Number)
		}
		switch a.Outcome {
		case OutcomeCircuitOpen, OutcomeRateLimited, OutcomeTooManyInFlight:
		case OutcomeCanceled:
			canceled++
		default:
			sent++
		}
		if a.Retry != (j < len(got)-1) && !(j == len(got)-1 && rep.StopReason == StopCanceled) {
			t.Errorf("%s: record %d of %d has Retry %v; records %s", where, j+1, len(got), a.Retry, recordsText(got))
		}
		if !a.Retry && a.Delay != 0 {
			t.Errorf("%s: record %d has no retry but a delay %v", where, j+1, a.Delay)
		}
	}
	if len(got)+hedges != rep.Attempts || hedges != rep.Hedges {
		t.Errorf("%s: %d records with %d hedges, the Report %+v; records %s", where, len(got), hedges, rep, recordsText(got))
	}
	var e *Error
	if errors.As(r.err, &e) && (e.Attempts != rep.Attempts || e.Hedges != rep.Hedges) {
		t.Errorf("%s: error says %d attempts, %d hedges; the Report %+v; %v", where, e.Attempts, e.Hedges, rep, r.err)
	}
	if seen < sent+hedges || seen > sent+canceled+hedges {
		t.Errorf("%s: the base saw %d, records say %d sent (%d canceled) + %d hedges; records %s", where, seen, sent, canceled, hedges, recordsText(got))
	}
	if rep.StopReason != StopCanceled && waited != rep.Waited {
		t.Errorf("%s: records waited %v, the Report %v; records %s", where, waited, rep.Waited, recordsText(got))
	}
	if rep.StopReason != StopCanceled && spent > rep.Duration {
		t.Errorf("%s: records spent %v, the Report's Duration %v; records %s", where, spent, rep.Duration, recordsText(got))
	}
	if hedges == 0 && canceled == 0 && seen == sent {
		k := 0
		for _, a := range got {
			switch a.Outcome {
			case OutcomeCircuitOpen, OutcomeRateLimited, OutcomeTooManyInFlight:
				continue
			}
			w := seenList[k]
			k++
			// (The base reads the key's header as net/http writes it;
			// the Transport may set it in its wire spelling.)
			if w.key != "" && a.IdempotencyKey != w.key {
				t.Errorf("%s: record %d says key %q, the base saw %q; records %s", where, a.Number, a.IdempotencyKey, w.key, recordsText(got))
			}
			if (w.step.kind == ckStatus || w.step.kind == ckHuge) && a.StatusCode != w.step.status && a.StatusCode != 0 {
				t.Errorf("%s: record %d says status %d, the base answered %v; records %s", where, a.Number, a.StatusCode, w.step, recordsText(got))
			}
		}
	}
	infos, ends := rt.infos[id], rt.ends[id]
	resends := map[int]bool{}
	for _, in := range infos {
		if resends[in.ResendCount] {
			t.Errorf("%s: ResendCount %d twice: %+v; base saw %d", where, in.ResendCount, infos, seen)
		}
		resends[in.ResendCount] = true
	}
	for k := range len(infos) {
		if !resends[k] {
			t.Errorf("%s: ResendCounts %+v miss %d; base saw %d; records %s", where, infos, k, seen, recordsText(got))
			break
		}
	}
	if len(infos) != seen {
		t.Errorf("%s: the Tracer started %d attempts, the base saw %d; records %s", where, len(infos), seen, recordsText(got))
	}
	if len(ends) != 1 || ends[0] != rep {
		t.Errorf("%s: EndCall got %+v, the Report %+v", where, ends, rep)
	}
	if len(got) > 0 && rep.StopReason != StopCanceled {
		last := got[len(got)-1]
		if last.StopReason != rep.StopReason {
			t.Errorf("%s: last record's stop %q, Report's %q; records %s; err %v", where, last.StopReason, rep.StopReason, recordsText(got), r.err)
		}
		if last.Outcome != rep.Outcome {
			t.Errorf("%s: last record's outcome %q, Report's %q; records %s; err %v", where, last.Outcome, rep.Outcome, recordsText(got), r.err)
		}
	}
}

// recordsText returns the records as, one line, for a failure's message.
func recordsText(as []Attempt) string {
	s := ""
	for _, a := range as {
		s += fmt.Sprintf("[#%d %s st=%d retry=%v stop=%q hedges=%d hedge=%d err=%v dur=%v delay=%v wait=%v+%v] ", a.Number, a.Outcome, a.StatusCode, a.Retry, a.StopReason, a.Hedges, a.Hedge, a.Err, a.Duration, a.Delay, a.LocalWait, a.SlotWait)
	}
	return s
}

// recordPropTracer records what a Tracer is told, by call.
type recordPropTracer struct {
	mu    sync.Mutex
	infos map[string][]AttemptInfo
	ends  map[string][]Report
}

func (r *recordPropTracer) StartCall(ctx context.Context, _ *http.Request) context.Context {
	return ctx
}

func (r *recordPropTracer) StartAttempt(req *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	id := req.Header.Get("X-Contract-Call")
	r.mu.Lock()
	r.infos[id] = append(r.infos[id], info)
	r.mu.Unlock()
	return req, nil
}

func (r *recordPropTracer) Attempt(context.Context, Attempt) {}

func (r *recordPropTracer) EndCall(ctx context.Context, rep *Report) {
	id, _ := ctx.Value(recordCallID{}).(string)
	r.mu.Lock()
	r.ends[id] = append(r.ends[id], *rep)
	r.mu.Unlock()
}

// callLogs is a slog.Handler that keeps the records of each call, by the
// id its context carries.
type callLogs struct {
	mu     sync.Mutex
	byCall map[string][]map[string]any
}

func (h *callLogs) Enabled(context.Context, slog.Level) bool { return true }
func (h *callLogs) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *callLogs) WithGroup(string) slog.Handler            { return h }
func (h *callLogs) Handle(ctx context.Context, r slog.Record) error {
	id, _ := ctx.Value(recordCallID{}).(string)
	m := map[string]any{"level": r.Level.String(), "msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h.mu.Lock()
	h.byCall[id] = append(h.byCall[id], m)
	h.mu.Unlock()
	return nil
}

// checkLogs compares the log records of a call with its observer's.
func checkLogs(t *testing.T, where string, call ccall, r recordResult, recs []Attempt, logs []map[string]any) {
	t.Helper()
	if r.panicked != nil {
		return
	}
	var attempts []map[string]any
	for _, l := range logs {
		if l["msg"] != "resilient: breaker state change" {
			attempts = append(attempts, l)
		}
	}
	want := len(recs)
	if len(recs) > 0 && recs[len(recs)-1].Retry && r.rep.StopReason == StopCanceled {
		want++ // the record of the wait the cancel ended
	}
	if len(attempts) != want {
		t.Errorf("%s: %d log records, %d observer records; logs %v; records %s", where, len(attempts), len(recs), attempts, recordsText(recs))
		return
	}
	for j, a := range recs {
		l := attempts[j]
		if l["attempt"] != int64(a.Number) || l["outcome"] != string(a.Outcome) {
			t.Errorf("%s: log %v, record %s", where, l, recordsText([]Attempt{a}))
		}
		if st, ok := l["status"]; ok != (a.StatusCode != 0) || ok && st != int64(a.StatusCode) {
			t.Errorf("%s: log status %v, record %d", where, st, a.StatusCode)
		}
		level := "ERROR"
		switch {
		case a.Retry:
			level = "WARN"
		case a.Outcome == OutcomeSuccess && a.Number == 1:
			level = "DEBUG"
		case a.Outcome == OutcomeSuccess:
			level = "INFO"
		case a.Outcome == OutcomePermanent && a.StatusCode > 0 && a.StatusCode < 500 && a.StatusCode != 408 && a.StatusCode != 429:
			level = "INFO"
		case (a.Outcome == OutcomeCanceled || a.StopReason == StopCanceled) && call.cancelAfter != 0 && call.deadline == 0 && call.callElapsed == 0:
			level = "INFO"
		case (a.Outcome == OutcomeCanceled || a.StopReason == StopCanceled) && call.cancelAfter != 0:
			level = ""
		}
		if level != "" && l["level"] != level {
			t.Errorf("%s: record %s logged at %v, want %s; log %v", where, recordsText([]Attempt{a}), l["level"], level, l)
		}
		if sr, _ := l["stop_reason"].(string); sr != string(a.StopReason) {
			t.Errorf("%s: log stop %q, record %q", where, sr, a.StopReason)
		}
	}
}
