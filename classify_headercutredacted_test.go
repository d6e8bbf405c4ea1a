package resilient

import "testing"

// TestClassifyHeaderCutServerWords: cutHeaders read the status line that
// net/http quotes in its error from the error's redacted text, in which a
// status code or a line holding a '?', a '#' or an '@' had lost its
// query, fragment or user info ("2?x" read "2", "x@" read "", "HTTP/1.1#x"
// read "HTTP/1.1"): a server's framing was taken for a status line cut
// short, and a GET that a plain client sends once was sent twice.
func TestClassifyHeaderCutServerWords(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 2?x OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 x@ OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 20# OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1#x\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0?\r\n\r\n",
	} {
		if n, err := getRaw(t, nil, func(int32) string { return answer }); n != 1 || err == nil {
			t.Errorf("a server answering %q got the GET %d times (error %v); want once, and the error", answer, n, err)
		}
	}
}
