package examples

import (
	"errors"
	"testing"

	"golang.org/x/oauth2"
)

// TestOAuth2LateTokenYieldsToANewerRefresh shows the other half of what
// keepLate's doc says: the token of an abandoned refresh answered after
// all is kept only if no refresh since has brought one. The newer token
// (and the refresh token it rotated) stays, for the late answer's refresh
// token was spent by the refresh that brought it. (The tests of the late
// answer covered the half where it is kept, and passed with any late token
// kept.)
func TestOAuth2LateTokenYieldsToANewerRefresh(t *testing.T) {
	last := &oauth2.Token{AccessToken: "a-1", RefreshToken: "r-1"}
	newer := &oauth2.Token{AccessToken: "a-2", RefreshToken: "r-2"}
	late := &oauth2.Token{AccessToken: "a-late", RefreshToken: "r-late"}
	for _, tc := range []struct {
		name string
		cur  *oauth2.Token // the token the transport holds when the late answer comes
		f    fetched
		want *oauth2.Token
	}{
		{"NoRefreshSince", last, fetched{tok: late}, late},
		{"RefreshedSinceLateAnswer", newer, fetched{tok: late}, newer},
		{"LateError", last, fetched{err: errors.New("invalid_grant")}, last},
		{"LatePanic", last, fetched{tok: late, panicked: true}, last},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := &tokenTransport{lock: make(chan struct{}, 1), tok: tc.cur}
			tt.cur.Store(tc.cur)
			tt.keepLate(last, tc.f)
			if tt.tok != tc.want || tt.cur.Load() != tc.want {
				t.Errorf("after the late answer the transport holds %q (cur %q), want %q", tt.tok.AccessToken, tt.cur.Load().AccessToken, tc.want.AccessToken)
			}
			if len(tt.lock) != 0 {
				t.Error("keepLate left the lock held")
			}
		})
	}
}
