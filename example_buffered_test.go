package resilient_test

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// A download whose connection breaks halfway through the body of the
// first answer: the Transport reads each success's body within its
// attempt (up to 1 MiB here), retries the GET whose body was cut, and the
// caller reads the whole body of the second answer, from memory.
func ExampleWithBufferedResponse() {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"data":"the whole report"}`)
	})
	srv := resilienttest.Wrap(api, resilienttest.Faults{},
		resilienttest.WithScript("GET /v1/report", resilienttest.CutBody())) // the first body stops halfway
	defer srv.Close()

	client := &http.Client{Transport: resilient.New(srv.Transport(),
		resilient.WithBufferedResponse(1<<20),
		resilient.WithBackoff(10*time.Millisecond, 100*time.Millisecond))}
	resp, err := client.Get(srv.URL + "/v1/report")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), err)
	fmt.Println("attempts:", srv.Stats().Attempts["GET /v1/report"])
	// Output:
	// 200 {"data":"the whole report"} <nil>
	// attempts: 2
}
