package examples

import (
	"context"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestOpenAINilBaseWaitsTenMinutesForHeaders shows what OpenAIOptions
// says of a nil base: http.DefaultTransport, cloned to wait at most 10
// minutes for an answer to start, as openai-go's own client does. A
// completion whose answer never starts fails after 10 minutes, one
// attempt (a POST cut waiting is not resent), where a base without that
// bound waited for as long as the call's context lived (here an hour).
func TestOpenAINilBaseWaitsTenMinutesForHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // the request is written whole: the wait for the headers starts
			time.Sleep(2 * time.Hour)   // no answer, not even its headers, within the call's hour
		}))
		saved := http.DefaultTransport
		http.DefaultTransport = srv.Transport() // an *http.Transport, as the default is: the recipe clones it
		t.Cleanup(func() { http.DefaultTransport = saved })
		client := openaiClient(srv, OpenAIOptions(nil))
		http.DefaultTransport = saved // the recipe holds its clone

		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		start := time.Now()
		err := openaiChat.do(ctx, client)
		if err == nil {
			t.Fatal("a completion that never answered succeeded")
		}
		if got, d := srv.Hits(openaiChat.path), time.Since(start); got != 1 || d != 10*time.Minute {
			t.Errorf("%d server attempts in %v, want 1 in 10m0s (the nil base's ResponseHeaderTimeout): %v", got, d, err)
		}
	})
}
