package examples

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestOpenAIBodyModelReadsAMebibyteAtMost: openaiBodyModel reads the
// model of a JSON body of 1 MiB at most, as its documentation says; a
// larger body (a batch of embeddings' inputs) is not read, so that a
// request's key costs no read of a body of any size, which the JSON
// decoder would hold whole in memory.
func TestOpenAIBodyModelReadsAMebibyteAtMost(t *testing.T) {
	for _, tc := range []struct {
		pad  int
		want string
	}{
		{pad: 100, want: "gpt-4o"},
		{pad: 1 << 20, want: ""},
	} {
		body := []byte(`{"model":"gpt-4o","input":"` + strings.Repeat("a", tc.pad) + `"}`)
		req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/embeddings", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if got := openaiBodyModel(req); got != tc.want {
			t.Errorf("a body of %d bytes: model %q, want %q", len(body), got, tc.want)
		}
	}
}

// TestOpenAIBodyModelClosesItsBodies: every body openaiBodyModel gets from
// GetBody is closed, the one it reads included: a GetBody may return a
// body that holds a resource until closed (a file).
func TestOpenAIBodyModelClosesItsBodies(t *testing.T) {
	body := `{"model":"gpt-4o"}`
	req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	var opened, closed int
	req.GetBody = func() (io.ReadCloser, error) {
		opened++
		return modelBodyCloses{Reader: strings.NewReader(body), n: &closed}, nil
	}
	if got := openaiBodyModel(req); got != "gpt-4o" {
		t.Errorf("model %q, want gpt-4o", got)
	}
	if opened == 0 || closed != opened {
		t.Errorf("GetBody gave %d bodies, %d closed; want each closed", opened, closed)
	}
}

// modelBodyCloses is a body that counts its Close calls in n.
type modelBodyCloses struct {
	io.Reader
	n *int
}

func (c modelBodyCloses) Close() error { *c.n++; return nil }
