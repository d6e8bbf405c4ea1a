package resilient

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"testing"

	jsonenv "github.com/resilienthttp/resilient/internal/envelope"
)

// FuzzParseErrorCompressed checks ParseError on an error body that came
// compressed, as net/http leaves it when the caller set Accept-Encoding
// itself (gzip, deflate as zlib or as a bare deflate stream), or that
// names an encoding it does not have, or that was cut short: it never
// panics, the body still reads byte for byte as it came, and an envelope
// that decodes within the peek reads as the same envelope sent plain (see
// decodedPrefix).
func FuzzParseErrorCompressed(f *testing.F) {
	for i, s := range envelopeSeeds {
		f.Add([]byte(s), uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		var body bytes.Buffer
		enc := "gzip"
		switch mode % 5 {
		case 0:
			zw := gzip.NewWriter(&body)
			zw.Write(data)
			zw.Close()
		case 1:
			enc = "deflate"
			zw := zlib.NewWriter(&body)
			zw.Write(data)
			zw.Close()
		case 2:
			enc = "deflate"
			zw, _ := flate.NewWriter(&body, flate.BestSpeed)
			zw.Write(data)
			zw.Close()
		case 3:
			body.Write(data) // a Content-Encoding the server did not apply
		case 4:
			zw := gzip.NewWriter(&body)
			zw.Write(data)
			zw.Close()
			body.Truncate(body.Len() / 2) // cut on its way
		}
		sent := bytes.Clone(body.Bytes())
		h := http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {enc}}
		resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: h, Body: io.NopCloser(bytes.NewReader(sent))}
		e := ParseError(resp)
		if e == nil {
			t.Fatal("ParseError of a 503 = nil")
		}
		if got, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(got, sent) {
			t.Fatalf("the body reads %d bytes, %v after ParseError; %d were sent", len(got), err, len(sent))
		}
		start := bytes.TrimLeft(jsonenv.TrimBOM(data), " \t\r\n")
		if mode%5 > 2 || len(sent) > DefaultMaxPeek || len(data) > DefaultMaxPeek || len(start) == 0 || start[0] != '{' {
			return
		}
		plain := ParseError(&http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(data))})
		if e.Code != plain.Code || e.Message != plain.Message || e.Dialect != plain.Dialect || e.Retryable != plain.Retryable {
			t.Fatalf("compressed (%s): %+v; sent plain: %+v", enc, e, plain)
		}
	})
}
