package resilienttest

import (
	"encoding/json"
	"testing"
)

// TestUsageKeptByReset proves what RouteUsage and Reset say: the usage
// route reports the API's own counts, of what the server stored and the
// requests it read, which Reset (of the Stats counters) keeps, all alike.
func TestUsageKeptByReset(t *testing.T) {
	for _, d := range dialects {
		s := NewServer(d)
		mustStatus(t, send(t, s, "POST", "/v1/posts", `{"text":"a"}`, "k1"), 201)
		mustStatus(t, send(t, s, "GET", "/v1/posts", "", ""), 200)
		s.Reset()
		var usage struct {
			Posts    int `json:"posts"`
			Requests int `json:"requests"`
		}
		json.Unmarshal(parseSuccess(t, d, send(t, s, "GET", "/v1/usage", "", "")), &usage)
		s.Close()
		if usage.Posts != 1 || usage.Requests != 3 {
			t.Errorf("%v: after Reset, usage %+v, want 1 post and 3 requests (Reset keeps the API's counts)", d, usage)
		}
		if st := s.Stats(); st.Requests != 1 {
			t.Errorf("%v: Stats.Requests = %d after Reset and one request, want 1", d, st.Requests)
		}
	}
}
