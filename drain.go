package resilient

import (
	"bytes"
	"errors"
	"io"
	"net/http"
)

// This file holds the drain of a response the retry loop retries past, kept
// for a give-up that may follow.

// maxDrain bounds how much of a response retried past is read so that its
// connection can be reused; a longer body is closed unread.
const maxDrain = 64 << 10

// holdResponse keeps resp for a give-up that may follow: it reads at most
// maxDrain bytes of its body into memory, for at most maxReadWait (and not
// past the attempt's deadline), and closes the original, so that the
// connection is reused. A longer or slower body is cut there, and reading
// past the cut returns an error.
func holdResponse(resp *http.Response) *http.Response {
	var data []byte
	eof := false
	inner := resp.Body
	if db, ok := inner.(*deadlineBody); ok {
		inner = db.rc
	}
	if pb, ok := inner.(*prefixBody); ok && pb.eof && pb.err == nil {
		data, eof = pb.prefix, true
	} else {
		stop := abortAfter(resp.Body, nil, maxReadWait)
		var err error
		data, eof, err = readPrefix(resp.Body, resp.ContentLength, maxDrain)
		stop()
		if err != nil {
			eof = false
		}
	}
	resp.Body.Close()
	var rest io.Reader = bytes.NewReader(data)
	if !eof {
		rest = io.MultiReader(rest, errReader{errBodyTruncated})
	}
	resp.Body = io.NopCloser(rest)
	return resp
}

// errBodyTruncated is returned by the body of a response the Transport held
// after retrying past it, beyond the part it kept.
var errBodyTruncated = errors.New("resilient: response body truncated after a retry")

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
