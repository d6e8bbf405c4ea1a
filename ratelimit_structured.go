package resilient

import (
	"strings"
	"time"
)

// This file reads the IETF draft's structured rate-limit fields, RateLimit
// and RateLimit-Policy.

// structured reads the IETF draft's RateLimit field, a list of
// `"policy";r=remaining;t=seconds` items, pairing it with RateLimit-Policy,
// a list of `"policy";q=quota;w=window` items. Among several items the one
// with the least remaining is the binding one, and of those that have as
// little left, the one whose reset is the latest (one without a reset
// losing to one with): two quotas spent hold a request until both are
// back, and the first's reset, sooner, would send it into the other's
// 429. Its policy is the one of the same name, else the first. The draft
// 7 dictionary form `limit=100, remaining=50, reset=30` is read too, its
// policy the one whose quota is its limit, else the first.
//
// v and policy are the fields' lines: a field sent on several lines (a
// gateway's item beside the server's) is read as one, its lines joined by
// commas (RFC 9651, section 4.2), so that the binding item or its policy
// on a later line is not missed. Of the dictionary form's lines, when two
// of them give the same member (see dictSources), each holds a source's
// triple, and one is read alone, as the lines of the other families'
// triples are (see tripleLines): the first of its first maxHintLines
// lines that gives a remaining count, else a limit. Lines that give each
// member once are one dictionary sent on several lines, read joined.
func (r *rateHeaders) structured(v, policy []string, now *lazyNow) {
	bestName, best := "", -1
	var reset time.Duration
	hasReset := false
	dict := isDictionary(firstNonEmpty(v))
	if dict && len(v) > 1 && dictSources(v) {
		if _, i, _ := anchorLine(v, v, dictRemaining, dictLimit); i >= 0 {
			v = v[i : i+1]
		}
	}
	eachListMember(v, func(name, params string) bool {
		if dict {
			// Dictionary form: each member is key=value.
			k, val, _ := strings.Cut(name, "=")
			k = strings.TrimSpace(k)
			switch k {
			case "limit", "l":
				if n, ok := parseCount(val); ok {
					r.info.Limit = n
				}
			case "remaining", "r":
				if n, ok := parseCount(val); ok {
					r.info.Remaining = n
				}
			case "reset", "t":
				if f, ok := parseDecimal(strings.TrimSpace(val)); ok && f < resetUnixSeconds {
					reset, hasReset = time.Duration(f*float64(time.Second)), true
				}
			}
			return true
		}
		n, ok := paramCount(params, "r")
		if !ok || best >= 0 && n > best {
			return true
		}
		t, hasT := paramSeconds(params, "t")
		if n == best && (!hasT || hasReset && t <= reset) {
			return true
		}
		bestName, best = name, n
		reset, hasReset = t, hasT
		return true
	})
	if !dict && best >= 0 {
		r.info.Remaining = best
	}
	if hasReset {
		r.info.Reset = now.get().Add(reset)
	}
	if len(policy) == 0 {
		return
	}
	if p, ok := pickPolicy(policy, bestName, r.info.Limit); ok {
		if r.info.Limit < 0 {
			r.info.Limit = p.quota
		}
		r.window = p.window
	}
}

// isDictionary reports whether a RateLimit value is the draft 7 dictionary
// form: its first member is an unquoted key=value (a list item that is a
// token cannot contain '=').
func isDictionary(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || v[0] == '"' {
		return false
	}
	end := strings.IndexAny(v, ",;")
	if end < 0 {
		end = len(v)
	}
	return strings.IndexByte(v[:end], '=') >= 0
}

// dictSources reports whether the lines v of the dictionary form are
// several sources' triples (a gateway's line beside the server's): two of
// them give the same member, limit, remaining or reset (by its key or its
// short one). Lines that give each member once are one dictionary sent on
// several lines (RFC 9651, section 4.2: "limit=100, remaining=0" and
// "reset=30"), whose members are read together.
func dictSources(v []string) bool {
	var seen uint8
	for _, line := range v {
		var has uint8
		eachMember(line, func(name, _ string) bool {
			k, _, _ := strings.Cut(name, "=")
			switch strings.TrimSpace(k) {
			case "limit", "l":
				has |= 1
			case "remaining", "r":
				has |= 2
			case "reset", "t":
				has |= 4
			}
			return true
		})
		if has&seen != 0 {
			return true
		}
		seen |= has
	}
	return false
}

// dictRemaining returns the remaining count of a line of the dictionary
// form, as structured reads it.
func dictRemaining(line string) (int, bool) { return dictCount(line, "remaining", "r") }

// dictLimit returns the limit of a line of the dictionary form, as
// structured reads it.
func dictLimit(line string) (int, bool) { return dictCount(line, "limit", "l") }

// dictCount returns the count of the last member of the dictionary line
// whose key is key or short, as structured reads it.
func dictCount(line, key, short string) (n int, ok bool) {
	eachMember(line, func(name, _ string) bool {
		k, val, _ := strings.Cut(name, "=")
		if k = strings.TrimSpace(k); k == key || k == short {
			if c, isNum := parseCount(val); isNum {
				n, ok = c, true
			}
		}
		return true
	})
	return n, ok
}

type ratePolicy struct {
	quota  int
	window time.Duration
}

// pickPolicy returns the policy named name in a RateLimit-Policy list,
// whose lines are v, else the first whose quota is limit (the limit
// announced beside the list, -1 for none: the older drafts' and the draft
// 7 dictionary's policies have no names, and the limit announced is that
// of the policy nearest to running out, whichever its place in the list),
// else its first well-formed one.
func pickPolicy(v []string, name string, limit int) (ratePolicy, bool) {
	var first, named, same ratePolicy
	var hasFirst, hasNamed, hasSame bool
	eachListMember(v, func(n, params string) bool {
		q, ok := paramCount(params, "q")
		if !ok {
			// The older drafts' "100;w=60" form puts the quota first.
			if q, ok = parseCount(n); !ok {
				return true
			}
			n = ""
		}
		p := ratePolicy{quota: q}
		if w, ok := paramSeconds(params, "w"); ok && w > 0 {
			p.window = w
		}
		if !hasFirst {
			first, hasFirst = p, true
		}
		if !hasSame && limit >= 0 && q == limit {
			same, hasSame = p, true
		}
		if name != "" && n == name {
			named, hasNamed = p, true
			return false
		}
		return true
	})
	switch {
	case hasNamed:
		return named, true
	case hasSame:
		return same, true
	}
	return first, hasFirst
}

// firstNonEmpty returns the first of lines that is not blank, or "".
func firstNonEmpty(lines []string) string {
	for _, v := range lines {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// eachListMember is eachMember for a list field sent on the lines lines,
// read as one list, its lines joined by commas (RFC 9651, section 4.2).
func eachListMember(lines []string, fn func(name, params string) bool) {
	for _, v := range lines {
		if !eachMember(v, fn) {
			return
		}
	}
}

// eachMember calls fn with the name and the parameters (";"-separated, the
// leading ";" included) of each member of a structured-field list, until fn
// returns false, and reports whether it went through the whole list. A
// quoted name is unquoted; commas inside quotes do not end a member.
// Parameters that are quoted strings are kept verbatim.
func eachMember(v string, fn func(name, params string) bool) bool {
	for len(v) > 0 {
		// Split off one member at the first comma outside quotes.
		end, quoted := len(v), false
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '\\':
				if quoted {
					i++
				}
			case '"':
				quoted = !quoted
			case ',':
				if !quoted {
					end = i
					i = len(v)
				}
			}
		}
		m := strings.TrimSpace(v[:end])
		if end < len(v) {
			v = v[end+1:]
		} else {
			v = ""
		}
		if m == "" {
			continue
		}
		name, params := m, ""
		if m[0] == '"' {
			// A quoted name ends at the first unescaped quote.
			i := 1
			for ; i < len(m) && m[i] != '"'; i++ {
				if m[i] == '\\' {
					i++
				}
			}
			if i >= len(m) {
				continue // unterminated: malformed
			}
			name, params = m[1:i], m[i+1:]
		} else if i := strings.IndexByte(m, ';'); i >= 0 {
			name, params = m[:i], m[i:]
		}
		if !fn(strings.TrimSpace(name), params) {
			return false
		}
	}
	return true
}

// param returns the value of the parameter key in params (";k=v;k2=v2").
func param(params, key string) (string, bool) {
	for params != "" {
		var p string
		if i := strings.IndexByte(params[1:], ';'); i >= 0 {
			p, params = params[1:i+1], params[i+1:]
		} else {
			p, params = params[1:], ""
		}
		k, val, _ := strings.Cut(p, "=")
		if strings.TrimSpace(k) == key {
			return strings.TrimSpace(val), true
		}
	}
	return "", false
}

func paramCount(params, key string) (int, bool) {
	v, ok := param(params, key)
	if !ok {
		return 0, false
	}
	return parseCount(v)
}

// paramSeconds reads a parameter holding seconds (a structured-field
// integer or decimal).
func paramSeconds(params, key string) (time.Duration, bool) {
	v, ok := param(params, key)
	if !ok {
		return 0, false
	}
	f, ok := parseDecimal(v)
	if !ok || f >= resetUnixSeconds {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}
