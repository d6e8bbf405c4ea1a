package resilienttest

import (
	"net/http"
	"strings"
	"testing"
)

// TestWithHandlerTypedNil proves what WithHandler says of a nil handler
// for a handler variable of a concrete type left unset (a nil
// http.HandlerFunc, a nil *http.ServeMux): WithHandler (and Wrap) panic
// at once, where such a server used to drop the connection of every
// request, as a fault would, its handler panicking on the nil.
func TestWithHandlerTypedNil(t *testing.T) {
	var (
		fn  http.HandlerFunc
		mux *http.ServeMux
	)
	for _, h := range []http.Handler{fn, mux} {
		for name, mk := range map[string]func(){
			"WithHandler": func() { WithHandler(h) },
			"Wrap":        func() { Wrap(h, Faults{}).Close() },
		} {
			func() {
				defer func() {
					v := recover()
					if s, _ := v.(string); !strings.Contains(s, "nil handler") {
						t.Errorf("%s(%T(nil)): panicked with %v, want a nil handler panic", name, h, v)
					}
				}()
				mk()
			}()
		}
	}
}
