package examples

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDocQuotesEveryRecipeDeclaration checks that docs/sdks.md quotes
// every top-level declaration (function, method, type, constant, variable)
// of each recipe's file as it is in the code, not only those that
// TestDocQuotesRecipes names: a user copies a recipe from the document,
// and a declaration it leaves out (a context key's type, a helper) makes
// the copy fail to compile, or differ from the code these tests run.
func TestDocQuotesEveryRecipeDeclaration(t *testing.T) {
	doc, err := os.ReadFile("../docs/sdks.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range slices.Sorted(maps.Keys(recipes)) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
				continue
			}
			text := string(src[fset.Position(d.Pos()).Offset:fset.Position(d.End()).Offset])
			if !strings.Contains(string(doc), text) {
				t.Errorf("docs/sdks.md does not quote this declaration of %s as it is:\n%s", file, text)
			}
		}
	}
}
