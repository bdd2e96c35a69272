package events_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"customactions/events"
)

// stringConsts returns the string constants of the package in dir (test
// files left out) whose names start with one of prefixes, by name.
func stringConsts(t *testing.T, dir string, prefixes ...string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out := map[string]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) || !hasPrefix(name.Name, prefixes) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						out[name.Name] = v
					}
				}
			}
		}
	}
	return out
}

func hasPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// switchCases returns the string literals of the case clauses in file.
func switchCases(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if cc, ok := n.(*ast.CaseClause); ok {
			for _, e := range cc.List {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					out = append(out, v)
				}
			}
		}
		return true
	})
	return out
}

// TestProtocolDocumentsEveryName: every result status, error code, log
// event, log level, source and default name of package events, every admin
// error code, every admin verb that admin/handle.go answers and every
// subject pattern appears in PROTOCOL.md, in backquotes. A new constant
// without its documentation fails here.
func TestProtocolDocumentsEveryName(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := func(v string) bool { return strings.Contains(string(doc), "`"+v+"`") }

	names := map[string]string{}
	for n, v := range stringConsts(t, ".", "Status", "Code", "Event", "Level", "Source", "Default", "InvalidActionID") {
		names["events."+n] = v
	}
	adminCodes := stringConsts(t, filepath.Join("..", "admin"), "Code")
	if len(adminCodes) == 0 {
		t.Fatal("no admin error codes found: has admin/errors.go moved?")
	}
	for n, v := range adminCodes {
		names["admin."+n] = v
	}
	verbs := switchCases(t, filepath.Join("..", "admin", "handle.go"))
	if len(verbs) == 0 {
		t.Fatal("no admin verbs found in admin/handle.go")
	}
	for _, v := range verbs {
		names["admin verb "+v] = "<prefix>.admin." + v
	}
	s := events.NewSubjects("<prefix>")
	for n, v := range map[string]string{
		"Subjects.Trigger": s.Trigger("<source>", "<action_id>"), "Subjects.TriggerWildcard": s.TriggerWildcard(),
		"Subjects.Result": s.Result("<action_id>"), "Subjects.ResultWildcard": s.ResultWildcard(),
		"Subjects.Log": s.Log("<action_id>"), "Subjects.LogWildcard": s.LogWildcard(),
		"Subjects.Admin": s.Admin("<resource>", "<verb>"), "Subjects.AdminWildcard": s.AdminWildcard(),
		"Subjects.ResultFor(invalid)": s.ResultFor("a.b"), "Subjects.LogFor(invalid)": s.LogFor("a.b"),
	} {
		names[n] = v
	}
	if len(names) < 40 {
		t.Fatalf("only %d names collected: the parsing found too little", len(names))
	}
	var missing []string
	for n, v := range names {
		if !documented(v) {
			missing = append(missing, n+" = `"+v+"`")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("PROTOCOL.md does not mention %s", m)
	}
}
