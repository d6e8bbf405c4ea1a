package main

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestBadDayShareMeasured proves the header's claim of how often the bad
// day's server fails an attempt ("about 1 attempt in N fails") against
// what its faults do: N is the nearest whole number to the attempts per
// failure a plain client measures over 4000 reads, each on a connection
// of its own (so that net/http resends none). A Slow answer is no failure:
// it is answered normally, 300 ms late. The claim said 1 in 6, counting
// the slow answers; the server fails 1 attempt in 7.
func TestBadDayShareMeasured(t *testing.T) {
	var head bytes.Buffer
	writeHeader(&head, Config{Calls: 1, Workers: 1, Profile: "aidelly", Seed: 1})
	m := regexp.MustCompile(`about 1 attempt in (\d+) fails`).FindSubmatch(head.Bytes())
	if m == nil {
		t.Fatalf("header makes no claim of the share of attempts that fail:\n%s", head.String())
	}
	claimed, _ := strconv.Atoi(string(m[1]))

	const attempts = 4000
	synctest.Test(t, func(t *testing.T) {
		p := profiles["aidelly"]
		srv := resilienttest.NewPipeServer(resilienttest.Aidelly, p.serverOptions(resilienttest.Aidelly, 1)...)
		defer srv.Close()
		tr := srv.Transport().Clone()
		tr.DisableKeepAlives = true
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		failed := 0
		for range attempts {
			resp, err := client.Get(srv.URL + "/v1/posts")
			if err != nil {
				failed++
				continue
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode >= 400 {
				failed++
			}
		}
		if got := srv.Stats().Requests; got != attempts {
			t.Fatalf("server read %d requests, want %d (one per attempt)", got, attempts)
		}
		measured := float64(attempts) / float64(failed)
		if n := int(measured + 0.5); n != claimed {
			t.Errorf("header claims about 1 attempt in %d fails; the server failed %d of %d: 1 in %.2f", claimed, failed, attempts, measured)
		}
	})
}
