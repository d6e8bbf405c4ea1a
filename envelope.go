package resilient

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	jsonenv "github.com/resilienthttp/resilient/internal/envelope"
)

// envelope is what an error body's JSON envelope says.
type envelope struct {
	dialect   string
	code      string
	numeric   bool // code was a JSON number
	message   string
	requestID string
	details   []byte // raw JSON, a copy
	retryable int8   // -1: not said, 0: false, 1: true
	reason    string // a Google error's reason, when its code is the status (see internal/envelope)
	platform  bool   // a Postato platform error: its code is the social network's (see decide)
}

// parseEnvelope reads the JSON error envelope in data (see package
// internal/envelope for the shapes) and names its dialect (see
// APIError.Dialect). problem tells that the Content-Type was
// application/problem+json. It reports false when data is not a JSON
// object (HTML, text, truncated, trailing data, too deep).
func parseEnvelope(data []byte, problem bool) (envelope, bool) {
	return parseStatusEnvelope(data, problem, 0)
}

// parseStatusEnvelope is parseEnvelope for the body of a response of the
// given status (see jsonenv.ParseStatus): a number beside "errors" that is
// not the status is a code of the document's own.
func parseStatusEnvelope(data []byte, problem bool, status int) (envelope, bool) {
	e, ok := jsonenv.ParseStatus(data, problem, status)
	if !ok {
		return envelope{retryable: -1}, false
	}
	return envelope{
		dialect:   dialect(&e),
		code:      e.Code,
		numeric:   e.NumericCode,
		message:   e.Message,
		requestID: e.RequestID,
		details:   e.Details,
		retryable: e.Retryable,
		reason:    e.Reason,
		platform:  e.Vendor == jsonenv.Postato,
	}, true
}

// dialect names the envelope: a vendor's name where the body is
// recognizably that vendor's, "problem+json" for an RFC 9457 problem, else
// "generic": a shape that many APIs share (its name in internal/envelope
// says where the code was read).
func dialect(e *jsonenv.Envelope) string {
	if e.Vendor != "" {
		return e.Vendor
	}
	switch e.Shape {
	case jsonenv.ErrorObject:
		switch {
		case e.Success && strings.HasPrefix(e.Code, "PUBLIC_API_"):
			return "aidelly"
		case !e.Success && e.ErrorType == "" && inTable(altyaaCodes[:], e.Code):
			return "altyaa"
		}
	case jsonenv.ErrorString:
		if inTable(postatoCodes[:], e.Code) {
			return "postato"
		}
	case jsonenv.Problem:
		return e.Shape
	case "":
		return ""
	}
	return "generic"
}

func inTable(rows []codeEntry, code string) bool {
	for _, r := range rows {
		if r.code == code {
			return true
		}
	}
	return false
}

// peekEnvelope reads at most max bytes of resp's body when it can be JSON,
// parses the envelope, and gives resp back a body that yields every original
// byte. A body that is not JSON is not read; one that came compressed is
// parsed decoded (see decodedPrefix). A code that repeats the status,
// a number (Google's {"code":429}) or a string of its digits (Azure's
// {"code":"429"}), is no code. Once enough (nil for never) is set, the read
// stops as its Read in progress returns: the bytes read, a part of the
// envelope, are parsed as they are.
func peekEnvelope(resp *http.Response, max int64, enough *atomic.Bool) (envelope, bool) {
	problem, maybeJSON := jsonContentType(resp.Header.Get("Content-Type"))
	if !maybeJSON || resp.Body == nil || resp.Body == http.NoBody {
		return envelope{retryable: -1}, false
	}
	prefix, eof, err := readPrefixUntil(resp.Body, resp.ContentLength, max, endsAtLength(resp), enough)
	resp.Body = &prefixBody{prefix: prefix, rest: resp.Body, err: err, eof: eof}
	if len(prefix) == 0 {
		return envelope{retryable: -1}, false
	}
	env, ok := parseStatusEnvelope(decodedPrefix(resp, prefix, max), problem, resp.StatusCode)
	if env.code == strconv.Itoa(resp.StatusCode) {
		env.code, env.numeric = "", false
	}
	return env, ok
}

// peekEnvelopeWithin is peekEnvelope bounded in time as in bytes: a body
// still arriving after half of maxReadWait is handed over as it is, the
// envelope read from the bytes that came; one whose read stalls until
// maxReadWait is cut there (see abortAfter: through db, the attempt's
// deadline, when it has one, nil for none), and yields the bytes read,
// then the error that cut it.
func peekEnvelopeWithin(resp *http.Response, max int64, db *deadlineBody) (envelope, bool) {
	enough, stop := softAbortAfter(resp.Body, db, maxReadWait)
	defer func() {
		if stop() {
			// The cut closed the original (a read no deadline of
			// ours could cut through a context, or a base's body
			// that its context did not cut): it is not closed
			// again.
			if pb, isPrefix := resp.Body.(*prefixBody); isPrefix {
				pb.shut = true
			}
		}
	}()
	return peekEnvelope(resp, max, enough)
}

// jsonContentType tells whether a body of this Content-Type may hold a JSON
// envelope, and whether it is an RFC 9457 problem document.
func jsonContentType(ct string) (problem, maybeJSON bool) {
	if ct == "" {
		return false, true
	}
	mt := ct
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		mt = ct[:i]
	}
	mt = strings.TrimSpace(mt)
	switch {
	case strings.EqualFold(mt, "application/problem+json"):
		return true, true
	case strings.EqualFold(mt, "application/json"),
		strings.HasSuffix(strings.ToLower(mt), "+json"),
		strings.EqualFold(mt, "text/json"),
		strings.EqualFold(mt, "text/plain"):
		return false, true
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		// A malformed Content-Type: let the body tell.
		return false, true
	}
	return false, false
}

// readPrefix reads at most max bytes of r. It returns the bytes read,
// whether r reached its end, and the read error, if any, other than io.EOF.
// Its first buffer fits contentLength, when known, up to
// DefaultMaxBufferedBody (and a byte): the server's Content-Length may be
// wrong, and a longer body grows the buffer as its bytes come, doubling
// it, but no further than contentLength while the body is within it.
// When lengthEnds (see endsAtLength), a body of known length (above zero,
// below max) ends with its last byte, where readPrefixUntil stops: that
// many bytes is what net/http's HTTP/2 body yields at most (one that
// sends more fails), and the end of its stream may come long after its
// last byte, or never: a server sends it once its handler returns.
func readPrefix(r io.Reader, contentLength, max int64, lengthEnds bool) ([]byte, bool, error) {
	buf, eof, err := readPrefixUntil(r, contentLength, max, lengthEnds, nil)
	if !eof && err == nil && lengthEnds && contentLength > 0 && contentLength < max && int64(len(buf)) == contentLength {
		eof = true
	}
	return buf, eof, err
}

// readPrefixUntil is readPrefix that also stops, without an error, once
// enough is set (nil for never), as the Read in progress returns, and
// when lengthEnds, once a body of known length (above zero) has given
// that many bytes without its end: the rest of r is left unread, and the
// end not reported (see readPrefix).
func readPrefixUntil(r io.Reader, contentLength, max int64, lengthEnds bool, enough *atomic.Bool) ([]byte, bool, error) {
	size := int64(512)
	if contentLength >= 0 && contentLength < max {
		size = min(contentLength, DefaultMaxBufferedBody) + 1 // +1 sees the EOF without growing
	} else if max < size {
		size = max
	}
	buf := make([]byte, 0, size)
	for int64(len(buf)) < max {
		if len(buf) == cap(buf) {
			grow := int64(cap(buf)) * 2
			if contentLength >= int64(len(buf)) && contentLength < max {
				// Below max, contentLength+1 cannot overflow (a
				// server's Content-Length may be 2^63-1).
				grow = min(grow, contentLength+1)
			}
			if grow > max {
				grow = max
			}
			nb := make([]byte, len(buf), grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return buf, false, err
		}
		if enough != nil && enough.Load() || lengthEnds && contentLength > 0 && int64(len(buf)) == contentLength {
			break
		}
	}
	return buf, false, nil
}

// endsAtLength reports whether the body of resp, of known length, yields
// no byte past its ContentLength, its end maybe long after the last one:
// net/http's HTTP/2 body (see readPrefix). net/http's HTTP/1 body returns
// io.EOF with its last byte; another base's body of HTTP/1 (a decoder
// that kept the size that came, a mock) may be longer than its
// ContentLength, and is read to its end, as a plain client reads it.
func endsAtLength(resp *http.Response) bool {
	return resp.ProtoMajor >= 2
}

// prefixBody serves prefix, then the rest of the original body, which it
// closes. It lets go of prefix once it has been read, and when the body is
// closed, so that a response the caller keeps does not keep its bytes (up
// to WithBufferedResponse's max) alive. A Read after Close is the original
// body's, which it closed: it fails as the base's does (net/http's
// "http: read on closed response body", or its HTTP/2 twin), or returns
// io.EOF for http.NoBody. Close may be called concurrently with Read.
type prefixBody struct {
	mu     sync.Mutex // guards prefix, err and closed
	prefix []byte
	rest   io.ReadCloser
	err    error // the error that ended the peek, returned after prefix
	eof    bool  // rest is at its end: prefix is the whole body
	whole  bool  // prefix is the whole body; rest's end, where HTTP/2 trailers come, is still to be read
	shut   bool  // rest is closed already: Close does not close it again
	closed bool
}

func (b *prefixBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.rest.Read(p)
	}
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		if len(b.prefix) == 0 {
			b.prefix = nil
		}
		b.mu.Unlock()
		return n, nil
	}
	err := b.err
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if b.eof {
		// rest may be shut (see bufferBody).
		return 0, io.EOF
	}
	return b.rest.Read(p)
}

func (b *prefixBody) Close() error {
	b.mu.Lock()
	b.prefix, b.closed = nil, true
	shut := b.shut
	b.mu.Unlock()
	if shut {
		return nil
	}
	return b.rest.Close()
}
