package resilient

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestWriteProofServerWordsAreNoCallersMistake: a server processes a POST,
// then answers with a header net/http refuses, whose value reads like
// net/http's refusal to send a caller's request ("unsupported protocol
// scheme", "http: invalid Host header", an HTTP/2 client's refusal of a
// request header). net/http quotes the value in its error: the server's
// words are not net/http's, and prove neither that the request never left
// nor that it was the caller's mistake. A Classifier that retries network
// errors has the write sent once, as a plain client does, and the error is
// no *RequestError.
func TestWriteProofServerWordsAreNoCallersMistake(t *testing.T) {
	for _, header := range []string{
		"Content-Length: unsupported protocol scheme",
		"Content-Length: http: invalid Host header",
		"Content-Length: http2: invalid Connection request header",
		"Transfer-Encoding: http2: request body larger than specified content length",
	} {
		t.Run(header, func(t *testing.T) {
			var processed atomic.Int32
			addr, _ := tcpServer(t, func(c net.Conn) {
				go func() {
					defer c.Close()
					req, err := http.ReadRequest(bufio.NewReader(c))
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					processed.Add(1)
					io.WriteString(c, "HTTP/1.1 200 OK\r\n"+header+"\r\n\r\n")
				}()
			})
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			url := "http://" + addr + "/v1/payments"
			plainErr := postTo(base, url)
			plain := processed.Swap(0)
			err := postTo(New(base, WithBackoff(0, 0), WithClassifier(retryNetworkErrors)), url)
			processedTwice(t, plain, processed.Load(), plainErr, err)
			if re := new(RequestError); errors.As(err, &re) {
				t.Errorf("the server's answer is taken for the caller's mistake: %v", err)
			}
		})
	}
}
