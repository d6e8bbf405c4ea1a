package examples

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// recipes are the functions (and types) docs/sdks.md quotes, by file.
var recipes = map[string][]string{
	"stripe.go":        {"StripeBackendConfig"},
	"aws.go":           {"AWSHTTPClient", "awsRedirect", "awsThrottled", "errReader", "Read"},
	"github.go":        {"NewGitHubClient"},
	"openai.go":        {"OpenAIOptions", "openaiRateKey", "openaiBreakerKey", "openaiBodyModel", "openaiQuotaSpent"},
	"discord.go":       {"NewDiscordSession", "discordGlobal", "RoundTrip", "hold", "learn", "CloseIdleConnections", "Unwrap"},
	"slack.go":         {"SlackHTTPClient", "slackMethod", "slackToken"},
	"resty.go":         {"NewRestyClient"},
	"retryablehttp.go": {"NewRetryableClient", "noRetry", "keepIdle", "RoundTrip"},
	"oauth2.go":        {"NewClientCredentialsClient", "NewRefreshTokenClient", "newTokenClient", "keyHonoringHost", "tokenTransport", "RoundTrip", "CloseIdleConnections", "Unwrap", "leftOrigin", "origin", "token", "waitBound", "fetched", "refresh", "keepLate", "errBudget"},
	"otelhttp.go":      {"NewTracedClient"},
}

// TestDocQuotesRecipes checks that docs/sdks.md quotes every recipe
// function and type as it is in the code (from func or type to its closing
// brace), so that the document shows the code these tests run.
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
			var name string
			switch d := d.(type) {
			case *ast.FuncDecl:
				name = d.Name.Name
			case *ast.GenDecl:
				if d.Tok == token.TYPE && len(d.Specs) == 1 {
					name = d.Specs[0].(*ast.TypeSpec).Name.Name
				}
			}
			if !slices.Contains(funcs, name) {
				continue
			}
			found[name] = true
			text := string(src[fset.Position(d.Pos()).Offset:fset.Position(d.End()).Offset])
			if !strings.Contains(string(doc), text) {
				t.Errorf("docs/sdks.md does not quote %s of %s as it is:\n%s", name, file, text)
			}
		}
		for _, name := range funcs {
			if !found[name] {
				t.Errorf("%s has no function %s", file, name)
			}
		}
	}
}

// TestDocFencesClose checks that every code block of docs/sdks.md closes
// on a line of its own: a fence after code on its line ("}```") closes
// nothing, and the document renders the prose that follows as code.
func TestDocFencesClose(t *testing.T) {
	doc, err := os.ReadFile("../docs/sdks.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(doc), "\n") {
		if j := strings.Index(line, "```"); j >= 0 && strings.TrimSpace(line[:j]) != "" {
			t.Errorf("docs/sdks.md:%d: a fence after text on its line closes no code block: %q", i+1, line)
		}
	}
}
