package examples

import (
	"net/http"
	"strings"
	"testing"
)

// TestSlackTokenOnlyFromAForm: slackToken reads a token from the body of
// a form (application/x-www-form-urlencoded) only, where slack-go writes
// it: a JSON body whose text holds "&token=" (a message quoting a form)
// names no workspace, and its partition is the method's alone, not one
// named after what the message says.
func TestSlackTokenOnlyFromAForm(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "https://slack.com/api/chat.postMessage", strings.NewReader(`{"channel":"C123","text":"a&token=xoxb-quoted"}`))
	r.Header.Set("Content-Type", "application/json")
	if got := slackToken(r); got != "" {
		t.Errorf("a JSON body: token %q, want none", got)
	}
	if got := slackMethod(r); got != "slack.com/api/chat.postMessage" {
		t.Errorf("a JSON body without Authorization: partition %q, want the method alone", got)
	}
}
