package resilient

import (
	"net/http"
	"sync/atomic"

	"github.com/resilienthttp/resilient/resilienttest"
)

// h2FirstAnswered returns a pipe server of Aidelly over TLS (HTTP/2) whose
// first request first answers, and whose later requests each hang until
// their context ends (the call's budget ends them), with its count of the
// requests it got. The caller closes the server.
func h2FirstAnswered(first func(w http.ResponseWriter, r *http.Request)) (*resilienttest.Server, *atomic.Int32) {
	hits := new(atomic.Int32)
	srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithTLS(),
		resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hits.Add(1) > 1 {
				<-r.Context().Done()
				return
			}
			first(w, r)
		})))
	return srv, hits
}
