package resilient

import (
	"testing"
)

// TestClassifyHeaderCutOnLaterAttempt: a header block cut short is retried
// once per call, not only on the call's first attempt: a GET answered 503
// (a server restarting), whose retry's answer is then cut in a header's
// name or in its status line (the proxy in front restarting too), is
// retried again, and gets the third answer; a server that cuts every
// answer after the 503 is still sent the GET once more only.
func TestClassifyHeaderCutOnLaterAttempt(t *testing.T) {
	const (
		unavailable = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
		ok          = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
	)
	for name, cut := range map[string]string{
		"in a name":      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Contr",
		"in the status":  "HTTP/1.1 2",
		"in the version": "HTTP/1.",
	} {
		n, err := getRaw(t, nil, func(n int32) string {
			switch n {
			case 1:
				return unavailable
			case 2:
				return cut
			}
			return ok
		})
		if n != 3 || err != nil {
			t.Errorf("a 503, then headers cut %s: the server got the GET %d times (error %v); want 3 times, and the third answer", name, n, err)
		}
		n, err = getRaw(t, nil, func(n int32) string {
			if n == 1 {
				return unavailable
			}
			return cut
		})
		if n != 3 || err == nil {
			t.Errorf("a 503, then headers always cut %s: the server got the GET %d times (error %v); want 3 times, and the error", name, n, err)
		}
	}
}
