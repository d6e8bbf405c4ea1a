// Package leakcheck fails a test binary whose tests leave goroutines
// behind: the library starts no goroutine per request, and every one it
// starts (a hedged copy, a Store's refiller) ends with its call or its
// Close. It reads runtime.Stack, so that the root module needs no
// dependency for it.
package leakcheck

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// wait is how long Find waits for goroutines to end before it reports
// them: a server's connection goroutines and a closed transport's readers
// end shortly after the test that closed them returns, later on a busy
// machine.
const wait = 10 * time.Second

// Main runs m's tests and, if they pass, fails the run when goroutines
// started by them are still running once they have had time to end. It is
// meant as a package's TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
func Main(m *testing.M) {
	os.Exit(run(m, wait, os.Stderr))
}

// run runs the tests and returns the exit code: theirs, or 1 if they
// passed and goroutines are still running after d, which it lists on w.
func run(m interface{ Run() int }, d time.Duration, w io.Writer) int {
	code := m.Run()
	if code == 0 {
		if err := Find(d); err != nil {
			fmt.Fprintln(w, err)
			code = 1
		}
	}
	return code
}

// Find returns an error listing the goroutines other than the caller's and
// the runtime's, testing's and os/signal's own that still run after
// waiting up to d for them to end, and nil if there are none.
func Find(d time.Duration) error {
	end := time.Now().Add(d)
	pause := time.Millisecond
	for {
		leaked := Running()
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("leakcheck: %d goroutines still running after the tests:\n\n%s",
				len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Running returns the stacks of the goroutines running now, other than the
// caller's and those of the runtime, testing and os/signal.
func Running() []string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	// The first goroutine of the dump is the caller's.
	stacks := strings.Split(strings.TrimSpace(string(buf)), "\n\n")
	var leaked []string
	for _, s := range stacks[1:] {
		if !expected(s) {
			leaked = append(leaked, s)
		}
	}
	return leaked
}

// expected reports whether the goroutine dumped in stack belongs to the
// runtime, the testing package or os/signal, which outlive any test.
func expected(stack string) bool {
	lines := strings.Split(stack, "\n")
	if len(lines) < 2 {
		return true
	}
	top := funcName(lines[1])
	switch {
	case strings.HasPrefix(top, "runtime.") && strings.Contains(stack, "\ncreated by runtime."):
		return true // a runtime goroutine, shown with GOTRACEBACK=system
	case top == "os/signal.signal_recv", top == "os/signal.loop",
		top == "runtime.ensureSigM", top == "runtime.ReadTrace":
		return true
	case top == "testing.RunTests", top == "testing.(*T).Run":
		return true // the test runner, while a test calls Running
	}
	for _, l := range lines[1:] {
		if f := funcName(l); f == "os/signal.loop" || f == "os/signal.signal_recv" {
			return true // waiting in a system call for a signal
		}
	}
	return false
}

// funcName returns the function a frame line of a stack dump names,
// without its arguments: "net/http.(*conn).serve" for
// "net/http.(*conn).serve(0xc000123456, …)".
func funcName(line string) string {
	if i := strings.LastIndexByte(line, '('); i > 0 {
		return line[:i]
	}
	return line
}
