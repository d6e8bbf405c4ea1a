package resilienttest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkServer measures a round trip through a plain client to the
// server, on loopback and over pipes: the cost a benchmark built on the
// server pays for it.
func BenchmarkServer(b *testing.B) {
	for _, mode := range []string{"loopback", "pipe"} {
		newSrv := NewServer
		if mode == "pipe" {
			newSrv = NewPipeServer
		}
		b.Run(mode+"/GET usage", func(b *testing.B) {
			s := newSrv(Postato)
			defer s.Close()
			c := s.Client()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Get(s.URL + "/v1/usage")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		b.Run(mode+"/POST post", func(b *testing.B) {
			s := newSrv(Aidelly)
			defer s.Close()
			c := s.Client()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				n := strconv.Itoa(i)
				req, _ := http.NewRequest("POST", s.URL+"/v1/posts", strings.NewReader(`{"content":"post `+n+`"}`))
				req.Header.Set("Idempotency-Key", "k"+n)
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if st := s.Stats(); st.Duplicates != 0 {
				b.Fatalf("%d duplicates", st.Duplicates)
			}
		})
	}
}
