package resilient

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"

	jsonenv "github.com/resilienthttp/resilient/internal/envelope"
)

// This file holds the decoding of an error body that reaches the Transport
// compressed, for its envelope.

// decodedPrefix returns the envelope's bytes of prefix, the first bytes of
// the body of resp: prefix itself, or, when the body came compressed (a
// Content-Encoding of gzip or deflate that net/http left in place because
// the caller asked for an encoding itself), the bytes it decodes to, at
// most max of them, so that a small body that inflates to a large one
// costs no more than the peek. A body that does not decode (a server that
// names an encoding it did not apply, an encoding this package cannot
// read) is parsed as it came. prefix itself is left as it is: the caller
// reads the body as it came.
func decodedPrefix(resp *http.Response, prefix []byte, max int64) []byte {
	enc := resp.Header["Content-Encoding"]
	if len(enc) == 0 || resp.Uncompressed {
		return prefix
	}
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(enc[0])) {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(prefix))
		if err != nil {
			return prefix
		}
		r = zr
	case "deflate":
		// RFC 9110's deflate is a zlib stream; some servers send the
		// deflate stream alone.
		if zr, err := zlib.NewReader(bytes.NewReader(prefix)); err == nil {
			if data := decodeUpTo(zr, max); data != nil {
				return data
			}
		}
		r = flate.NewReader(bytes.NewReader(prefix))
	default:
		return prefix
	}
	if data := decodeUpTo(r, max); data != nil {
		return data
	}
	return prefix
}

// decodeUpTo returns at most max bytes that r decodes, or nil when they
// do not start a JSON object. A prefix cut by the peek ends its stream
// early: what it decodes to up to there is the envelope's start, parsed as
// such.
func decodeUpTo(r io.Reader, max int64) []byte {
	data, _, _ := readPrefix(r, -1, max, false)
	if start := bytes.TrimLeft(jsonenv.TrimBOM(data), " \t\r\n"); len(start) == 0 || start[0] != '{' {
		return nil
	}
	return data
}
