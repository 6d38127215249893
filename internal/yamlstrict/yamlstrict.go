// Package yamlstrict decodes YAML documents into Go structs strictly: an
// unknown or misspelt field, a wrong type, an alias or a repeated key is an
// error that names the file, line, column and field path. The Go types are
// the one definition of the schema: a key without a matching yaml tag is
// unknown. Both extension.yaml and policy files are read with it.
package yamlstrict

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem in a document, located by file, line and the
// field's path (metadata.version, rules[1].match.kinds).
type FieldError struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Lines maps field paths to their YAML nodes, so that later validation can
// point at the line of a value it refuses.
type Lines map[string]*yaml.Node

// Problem builds a FieldError for field, at its line when known.
func (l Lines) Problem(file, field, format string, args ...any) *FieldError {
	fe := &FieldError{File: file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n := l[field]; n != nil {
		fe.Line, fe.Column = n.Line, n.Column
	}
	return fe
}

// Decode checks data against the type of out and decodes it. It returns
// every structural problem at once; on problems, out is not filled.
func Decode(data []byte, file string, out any) (Lines, []*FieldError) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []*FieldError{yamlError(file, err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, []*FieldError{{File: file, Msg: "empty document"}}
	}
	root := doc.Content[0]
	c := &checker{file: file, lines: Lines{}}
	c.walk(root, reflect.TypeOf(out).Elem(), "")
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	if err := root.Decode(out); err != nil {
		return nil, []*FieldError{yamlError(file, err)}
	}
	return c.lines, nil
}

// Sort orders problems by line, for reading top to bottom.
func Sort(p []*FieldError) {
	sort.SliceStable(p, func(i, j int) bool { return p[i].Line < p[j].Line })
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func yamlError(file string, err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	fe := &FieldError{File: file, Msg: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		fe.Line, _ = strconv.Atoi(m[1])
	}
	return fe
}

type checker struct {
	file     string
	problems []*FieldError
	lines    Lines
}

func (c *checker) add(n *yaml.Node, field, format string, args ...any) {
	c.problems = append(c.problems, &FieldError{File: c.file, Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) walk(n *yaml.Node, t reflect.Type, at string) {
	if at != "" {
		c.lines[at] = n
	}
	if n.Kind == yaml.AliasNode {
		c.add(n, at, "YAML aliases are not allowed")
		return
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.PkgPath() == "time" { // time.Time is a scalar
			if n.Kind != yaml.ScalarNode {
				c.add(n, at, "want a time, got %s", nodeKind(n))
			}
			return
		}
		if n.Kind != yaml.MappingNode {
			if !isNull {
				c.add(n, at, "want a mapping, got %s", nodeKind(n))
			}
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", k.Value)
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				c.add(k, at, "%s", msg)
				continue
			}
			c.walk(v, f.Type, join(at, k.Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if !isNull {
				c.add(n, at, "want a list, got %s", nodeKind(n))
			}
			return
		}
		for i, item := range n.Content {
			c.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", at, i))
		}
	case reflect.String, reflect.Int, reflect.Bool, reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			c.add(n, at, "want a %s, got %s", t.Kind(), nodeKind(n))
		}
	}
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "the scalar " + strconv.Quote(n.Value)
	}
	return "something else"
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = f
		}
	}
	return out
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// suggest returns the known field closest to a misspelt one, if close
// enough to be the likely intent.
func suggest(got string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, k := range names {
		if d := editDistance(strings.ToLower(got), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
