package resilient

import (
	"fmt"
	"strings"
	"testing"
)

// TestKeyHonoringHostsPanicHidesKeyAsUser: an API that takes its key as
// the user name of Basic authentication, with an empty or a dummy
// password (Stripe's, Recurly's, many billing and mail APIs'), is
// configured as "KEY:@api.example.com"; given to WithKeyHonoringHosts in
// place of a host, it panics, as any invalid host does. Without a scheme,
// a key made of letters and digits read as one ("KEY:" as in "mailto:"),
// and the panic, which reaches the process's stderr and crash reports,
// showed it: "invalid host \"s3cretKey0:api.example.com\"". A value
// without "://" is a host: what precedes its '@' is user information,
// and the panic leaves it out, as it does after a scheme.
func TestKeyHonoringHostsPanicHidesKeyAsUser(t *testing.T) {
	for _, h := range []string{
		"s3cretKey0:@api.example.com",
		"s3cretKey0:x@api.example.com",
		"s3cretKey0:@api.example.com:443",
		"s3cretKey0:@api.example.com/v1?x=1",
		"//s3cretKey0:@api.example.com",
		"https://s3cretKey0:@api.example.com",
		"api:s3cretKey0@api.example.com",
		"s3cretKey0:@api.example.com//v1",
	} {
		p := mustPanic(t, fmt.Sprintf("WithKeyHonoringHosts(%q) did not panic", h), func() { WithKeyHonoringHosts(h) })
		msg, _ := p.(string)
		if strings.Contains(msg, "s3cretKey0") || !strings.HasPrefix(msg, "resilient: WithKeyHonoringHosts: invalid host ") || !strings.Contains(msg, "api.example.com") {
			t.Errorf("WithKeyHonoringHosts(%q) panicked with %q; want the option and the host named, without the key", h, msg)
		}
	}
}
