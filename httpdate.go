package resilient

import (
	"net/http"
	"time"
)

// parseHTTPDate parses an HTTP date (RFC 9110, section 5.6.7) in any of the
// three forms http.ParseTime accepts, and reports whether it is well
// formed. Every HTTP date is in GMT: the preferred form and asctime's say
// so by their grammar, and a date in the obsolete RFC 850 form must name
// GMT (or UTC, its equal) to be read. http.ParseTime reads another zone of
// that form ("PST", "CET", "GMT+5") by the abbreviations of the machine's
// own zone (time.Local), and as GMT when that has none, so that the same
// header would mean times hours apart on different machines; here such a
// date is malformed, on every machine.
func parseHTTPDate(v string) (time.Time, bool) {
	if t, err := time.Parse(http.TimeFormat, v); err == nil {
		return t, true
	}
	// In UTC no zone abbreviation is known: the zone is reported as
	// written, whatever time.Local is.
	if t, err := time.ParseInLocation(time.RFC850, v, time.UTC); err == nil {
		if name, offset := t.Zone(); offset == 0 && (name == "GMT" || name == "UTC") {
			return t, true
		}
		return time.Time{}, false
	}
	if t, err := time.Parse(time.ANSIC, v); err == nil {
		return t, true
	}
	return time.Time{}, false
}
