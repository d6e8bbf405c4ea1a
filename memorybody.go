package resilient

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// memoryBody replays a request body in memory (see inMemory) from the bytes
// the call found it in, rather than from the request's GetBody: a caller's
// GetBody may hand out one source rewound (an io.NopCloser of one
// *bytes.Reader, seeked back), which an earlier attempt's transport may
// still read after an early answer (net/http's HTTP/1 writer reads on past
// its write buffer, HTTP/2 sends the body after the headers). Reading the
// bytes without moving the caller's reader (ReadAt, or a *bytes.Buffer's
// unread bytes, which its Reads leave in place) needs no wait for that
// reader, nor a wrapper to watch it: the attempt sends the caller's body
// as it is, with its headers in one write, as a plain client does, and a
// retry or a hedged copy sends a copy of the bytes, in one write too,
// made off the success path. The zero memoryBody holds nothing (see ok).
// It holds no lock: the retry loop has one of its own (see reader), and a
// hedged attempt's copies share the bytes one of them took while the call
// could not end (see launchCopy).
type memoryBody struct {
	at   io.ReaderAt // the *bytes.Reader or *strings.Reader the body reads; nil for a *bytes.Buffer
	off  int64       // where at's unread bytes began when the call found them
	n    int64       // the body's length, the request's ContentLength
	buf  []byte      // a *bytes.Buffer's unread bytes, the caller's memory; nil for at
	data memoryBytes // what retries read: set by reader, or by init for a body over the limit
}

// init reports whether body, of a request whose ContentLength is want, is
// in memory (see inMemory), and records where its bytes are when it is.
// Called before the first attempt reads the body. A body longer than
// limit (WithMaxBufferedBody) is not copied for a retry or a hedged copy,
// which would hold more than the limit: they read the caller's bytes (see
// memoryBytes), recorded in data here.
func (m *memoryBody) init(body io.ReadCloser, want, limit int64) bool {
	src, ok := inMemory(body, want)
	if !ok {
		return false
	}
	m.n = want
	switch r := src.(type) {
	case *bytes.Buffer:
		m.buf = r.Bytes()
		if want > limit {
			m.data.data = m.buf
		}
	case *bytes.Reader:
		m.at, m.off = r, r.Size()-int64(r.Len())
		if want > limit {
			c := *r
			m.data.src = &c
		}
	case *strings.Reader:
		m.at, m.off = r, r.Size()-int64(r.Len())
		if want > limit {
			c := *r
			m.data.src = &c
		}
	}
	return true
}

// ok reports whether m holds a body (see init).
func (m *memoryBody) ok() bool {
	return m.n > 0
}

// bytes returns what a retry or a copy reads of the body: data, or a copy
// of buf's or at's bytes, which the caller may reuse once RoundTrip
// returned (it closed the body long before: the first attempt's transport
// did), while a writer of a retry or a copy, after an early answer, still
// sends them. Neither copy moves anything an earlier attempt's writer
// reads: it may read on meanwhile (ReadAt reads the reader's bytes, not
// its position; a Buffer's Read leaves its bytes in place). It fails only
// when the caller's reader no longer holds the bytes it held when the
// call began (a Reset of it with fewer): the body cannot be replayed. A
// body over the limit is not copied: data holds the caller's bytes (see
// init).
func (m *memoryBody) bytes() (memoryBytes, error) {
	switch {
	case m.data.ok():
		return m.data, nil
	case m.at == nil:
		return memoryBytes{data: append(make([]byte, 0, m.n), m.buf...)}, nil
	}
	data := make([]byte, m.n)
	if n, _ := m.at.ReadAt(data, m.off); int64(n) != m.n {
		return memoryBytes{}, fmt.Errorf("%w: its reader holds %d of its %d bytes", errBodyNotReplayable, n, m.n)
	}
	return memoryBytes{data: data}, nil
}

// reader returns a body of its own for a retry (see memoryBytes.open).
// The bytes are copied once, the first time (see bytes): data keeps them,
// for the retries after it and their GetBody (see memoryBytes.getBody).
func (m *memoryBody) reader() (io.ReadCloser, error) {
	data, err := m.bytes()
	if err != nil {
		return nil, err
	}
	m.data = data
	return data.open(), nil
}

// memoryBytes is what a retry or a hedged copy of a body in memory reads:
// a copy of the body's bytes in data, or, for a body larger than
// WithMaxBufferedBody, the caller's own bytes, not copied, as a plain
// client's resend through http.NewRequest's GetBody reads them: a
// *bytes.Buffer's unread bytes in data, or src, a copy of the caller's
// *bytes.Reader or *strings.Reader (its position and its bytes, not the
// bytes themselves) made before the first attempt read it, which the
// attempts' reads and a Reset of the caller's reader leave as it is. The
// zero memoryBytes holds nothing (see ok).
type memoryBytes struct {
	data []byte
	src  io.Reader // a *bytes.Reader or *strings.Reader, never read itself: see open
}

// ok reports whether b holds the body.
func (b memoryBytes) ok() bool {
	return b.data != nil || b.src != nil
}

// open returns a body of its own of b's bytes: an io.NopCloser of a
// *bytes.Reader or a *strings.Reader, which net/http writes with the
// headers in one write (see inMemory).
func (b memoryBytes) open() io.ReadCloser {
	switch r := b.src.(type) {
	case *bytes.Reader:
		c := *r
		return io.NopCloser(&c)
	case *strings.Reader:
		c := *r
		return io.NopCloser(&c)
	}
	return io.NopCloser(bytes.NewReader(b.data))
}

// getBody returns the GetBody of a retry's or a hedged copy's request,
// whose body reads b (see open): a body of its own each time, as
// http.NewRequest's. The base transport calls it to send that request
// again itself (HTTP/2 after a refused stream or a GOAWAY, whatever the
// method; HTTP/1 on a reused connection found dead): the caller's
// GetBody, which the request had, may rewind the caller's one reader,
// which the attempt before may still read (an early answer, a hedged
// attempt still sending it), and both writers then read each a part of
// one source, as a plain client's never do.
func (b memoryBytes) getBody() func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		return b.open(), nil
	}
}

// keyGetBody returns a GetBody of the body's bytes, for the functions that
// key a layer (BreakerSettings.Key, WithRateLimitKey), which may read the
// body through it (see call.keyRequest): each body it returns reads the
// bytes where the call found them (ReadAt, or a *bytes.Buffer's unread
// bytes) and moves nothing an attempt's writer reads, which the caller's
// GetBody may (a seek back of its one reader). Called during the call
// only: the bytes are the caller's, not a copy.
func (m *memoryBody) keyGetBody() func() (io.ReadCloser, error) {
	if m.at == nil {
		return memoryBytes{data: m.buf}.getBody()
	}
	at, off, n := m.at, m.off, m.n
	return func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(at, off, n)), nil
	}
}

// nopCloserWriterTo is the type of io.NopCloser of a *bytes.Buffer, a
// *bytes.Reader or a *strings.Reader, the bodies http.NewRequest makes.
var nopCloserWriterTo = reflect.TypeOf(io.NopCloser(strings.NewReader("")))

// inMemory reports whether body is io.NopCloser of a *bytes.Buffer,
// *bytes.Reader or *strings.Reader holding want bytes, want > 0, and
// returns that reader: a body whose Read cannot fail, stall or yield
// another length, which an attempt sends as it is. net/http writes such a
// body with its headers in one write, where it flushes the headers of any
// other body first: wrapped in a checkedBody, every such request went out
// in two writes, where a plain client makes one.
func inMemory(body io.ReadCloser, want int64) (io.Reader, bool) {
	if want <= 0 || reflect.TypeOf(body) != nopCloserWriterTo {
		return nil, false
	}
	var n int
	src := reflect.ValueOf(body).Field(0).Interface()
	switch r := src.(type) {
	case *bytes.Buffer:
		n = r.Len()
	case *bytes.Reader:
		n = r.Len()
	case *strings.Reader:
		n = r.Len()
	default:
		return nil, false
	}
	return src.(io.Reader), int64(n) == want
}
