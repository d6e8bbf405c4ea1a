package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestRedactionBufferedReadError: the error of a success whose body broke
// as the Transport read it within the attempt (WithBufferedResponse) is
// the attempt's, and must lose the request's own secrets as a base's error
// does, in the *Error as in the records: the rest of a query that holds a
// space, quoted by the cause of the caller's context, and a credential of
// the request that the server's text, quoted by the read's error, echoes
// beside a URL that made the text change already.
func TestRedactionBufferedReadError(t *testing.T) {
	check := func(t *testing.T, secret string, err error, logs string, atts []Attempt) {
		t.Helper()
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("the error holds %s: %v", secret, err)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %s: %s", secret, logs)
		}
		for i, a := range atts {
			if a.Err != nil && strings.Contains(a.Err.Error(), secret) {
				t.Errorf("Attempt[%d].Err holds %s: %v", i, secret, a.Err)
			}
		}
	}
	t.Run("context cause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const u = "https://api.openweathermap.org/data/2.5/weather?q=New York&appid=SECRET-appid"
			var logs bytes.Buffer
			var atts []Attempt
			tr := New(&rtScript{steps: []rtStep{{status: 200, body: "{", stall: true}}}, WithBufferedResponse(1<<10),
				WithObserver(func(a Attempt) { atts = append(atts, a) }),
				WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(500*time.Millisecond, func() { cancel(fmt.Errorf("shutting down: abandoned GET %s", u)) })
			_, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, u, nil))
			if err == nil {
				t.Fatal("want the read's error")
			}
			check(t, "SECRET-appid", err, logs.String(), atts)
		})
	})
	t.Run("server's text", func(t *testing.T) {
		const key = "SECRET-x-api-key-1"
		var logs bytes.Buffer
		var atts []Attempt
		broken := func() io.ReadCloser {
			return io.NopCloser(io.MultiReader(strings.NewReader("{"),
				errReader{errors.New("connection reset: key " + key + " is revoked, see https://docs.example.com/errors#revoked")}))
		}
		tr := New(&rtScript{steps: []rtStep{{status: 200, rc: broken}}}, fastRetries, WithMaxRetries(1), WithBufferedResponse(1<<10),
			WithObserver(func(a Attempt) { atts = append(atts, a) }),
			WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		req := newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/v1", nil)
		req.Header.Set("X-Api-Key", key)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // the last attempt's, not read within it
		if len(atts) != 2 || atts[0].Err == nil {
			t.Fatalf("attempts %+v, want the first cut by the read's error", atts)
		}
		check(t, key, nil, logs.String(), atts)
	})
}
