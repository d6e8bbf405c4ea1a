package examples

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// checkDocRow checks that docs/sdks.md's table of measured attempts has the
// row of sdk and failure with the counts a test just measured, so that the
// document cannot drift from the code.
func checkDocRow(t *testing.T, sdk, failure string, before, after int) {
	t.Helper()
	doc, err := os.ReadFile("../docs/sdks.md")
	if err != nil {
		t.Fatalf("reading the document: %v", err)
	}
	prefix := fmt.Sprintf("| %s | %s |", sdk, failure)
	want := fmt.Sprintf("%s %d | %d |", prefix, before, after)
	for line := range strings.Lines(string(doc)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if !strings.HasPrefix(line, want) {
			t.Errorf("docs/sdks.md has\n\t%s\nmeasured\n\t%s\nupdate the table (and the text around it)", line, want)
		}
		return
	}
	t.Errorf("docs/sdks.md has no row %q; measured %s", prefix, want)
}

// recipes are the functions docs/sdks.md quotes, by file.
var recipes = map[string][]string{
	"stripe.go":        {"StripeBackendConfig"},
	"aws.go":           {"AWSHTTPClient"},
	"github.go":        {"NewGitHubClient"},
	"resty.go":         {"NewRestyClient"},
	"retryablehttp.go": {"NewRetryableClient", "noRetry"},
	"oauth2.go":        {"NewClientCredentialsClient"},
	"otelhttp.go":      {"NewTracedClient"},
}

// TestDocQuotesRecipes checks that docs/sdks.md quotes every recipe
// function as it is in the code (from func to its closing brace), so that
// the document shows the code these tests run.
func TestDocQuotesRecipes(t *testing.T) {
	doc, err := os.ReadFile("../docs/sdks.md")
	if err != nil {
		t.Fatal(err)
	}
	for file, funcs := range recipes {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !slices.Contains(funcs, fd.Name.Name) {
				continue
			}
			found[fd.Name.Name] = true
			text := string(src[fset.Position(fd.Pos()).Offset:fset.Position(fd.End()).Offset])
			if !strings.Contains(string(doc), text) {
				t.Errorf("docs/sdks.md does not quote %s of %s as it is:\n%s", fd.Name.Name, file, text)
			}
		}
		for _, name := range funcs {
			if !found[name] {
				t.Errorf("%s has no function %s", file, name)
			}
		}
	}
}
