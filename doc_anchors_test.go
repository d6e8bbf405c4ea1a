package resilient

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocumentedAnchorsResolve checks that every link within README.md
// and docs/sdks.md to a section of the same document ("](#virtual-hosts)")
// names a heading of it, as GitHub spells its anchors: lower case, spaces
// as hyphens, punctuation dropped.
func TestDocumentedAnchorsResolve(t *testing.T) {
	link := regexp.MustCompile(`\]\(#([^)]*)\)`)
	for _, f := range []string{"README.md", "docs/sdks.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		anchors := make(map[string]bool)
		inCode := false
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				inCode = !inCode
			}
			if inCode || !strings.HasPrefix(line, "#") {
				continue
			}
			anchors[headingAnchor(strings.TrimLeft(line, "#"))] = true
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			if !anchors[m[1]] {
				t.Errorf("%s: a link to #%s, which no heading of the document names", f, m[1])
			}
		}
	}
}

// headingAnchor returns the anchor GitHub gives a Markdown heading.
func headingAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 0x7f:
			b.WriteRune(r)
		}
	}
	return b.String()
}
