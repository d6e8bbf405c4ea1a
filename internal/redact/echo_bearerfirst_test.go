package redact

import (
	"net/http"
	"strings"
	"testing"
)

// TestEchoesCallersCredentialBeforeServersTokens checks that a server's
// text cannot shield the caller's credential by naming a part of it as a
// token: "Bearer " and the key's first bytes, replaced everywhere first,
// broke the key up, and its other bytes stayed in the text.
func TestEchoesCallersCredentialBeforeServersTokens(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	req, err := http.NewRequest("GET", "https://api.test/v1/charges?api_key="+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	for _, s := range []string{
		"Bearer " + key[:8] + " is not valid; your key " + key + " was refused",
		"your key " + key + " was refused; Bearer " + key[:12],
		"bearer " + key[:len(key)-1] + " and then " + key,
	} {
		got := Echoes(s, req)
		if strings.Contains(got, key[8:]) || strings.Contains(got, key[12:]) || strings.Contains(got, key[1:]) {
			t.Errorf("Echoes(%q) = %q: the rest of the caller's key is kept", s, got)
		}
	}
}
