package resilienttest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestStatsBoundsHandlerRoutes proves that Stats.Attempts of a server
// WithHandler does not grow with the paths its clients send: past 1000
// routes, and for a route longer than 1 KiB, the attempts are counted
// under OtherRoutes, while every request is still counted once, and a
// scripted route is counted apart whenever it comes.
func TestStatsBoundsHandlerRoutes(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	s := NewPipeServer(Altyaa, WithHandler(ok), WithScript("POST /v1/charges", Respond(503)))
	defer s.Close()
	serve := func(method, path string) int {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, mustRequest(t, method, path))
		return w.Code
	}
	const n = 3 * maxRoutes
	for i := 1; i <= n; i++ {
		serve("GET", "/items/"+strconv.Itoa(i))
	}
	serve("GET", "/items/1") // a route counted before the bound
	long := "/" + strings.Repeat("x", maxRouteLen)
	serve("GET", long)
	if code := serve("POST", "/v1/charges"); code != http.StatusServiceUnavailable {
		t.Fatalf("scripted route: status %d, want the script's 503", code)
	}

	st := s.Stats()
	if len(st.Attempts) > maxRoutes+2 {
		t.Fatalf("len(Stats.Attempts) = %d after %d paths; want at most %d (the bound, OtherRoutes and the scripted route)", len(st.Attempts), n, maxRoutes+2)
	}
	sum := 0
	for _, c := range st.Attempts {
		sum += c
	}
	if sum != st.Requests || st.Requests != n+3 {
		t.Errorf("attempts sum to %d, Requests = %d; want both %d", sum, st.Requests, n+3)
	}
	if got, want := st.Attempts[OtherRoutes], n-maxRoutes+1; got != want {
		t.Errorf("Attempts[OtherRoutes] = %d, want %d (the paths past the bound and the long one)", got, want)
	}
	if got := st.Attempts["GET /items/1"]; got != 2 {
		t.Errorf(`Attempts["GET /items/1"] = %d, want 2`, got)
	}
	if got := st.Attempts["POST /v1/charges"]; got != 1 {
		t.Errorf(`Attempts["POST /v1/charges"] = %d, want 1 (a scripted route is counted apart)`, got)
	}
	if _, found := st.Attempts["GET "+long]; found {
		t.Errorf("a route of %d bytes counted apart, want under OtherRoutes", len(long)+4)
	}

	s.Reset()
	serve("GET", "/items/"+strconv.Itoa(n))
	if got := s.Stats().Attempts["GET /items/"+strconv.Itoa(n)]; got != 1 {
		t.Errorf("after Reset, a route past the old bound counted %d times apart, want 1 (Reset frees the room)", got)
	}
}
