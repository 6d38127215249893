package artifact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
	"github.com/connectsoft/marketplace/internal/yamlstrict"
	"github.com/github/go-spdx/v2/spdxexp"
)

// DescriptorFile is the name of the descriptor at the root of an extension.
const DescriptorFile = "extension.yaml"

// maxDescriptorSize bounds extension.yaml and the config blob: a descriptor is
// a page of YAML, and anything larger is a mistake or an attack.
const maxDescriptorSize = 1 << 20

// Extension is a parsed extension.yaml (schema v1). Its JSON form, produced by
// CanonicalJSON, is the config blob of the OCI artifact.
type Extension struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       Kind     `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`
}

// Metadata names and describes an extension for people and for the catalog.
type Metadata struct {
	Name        string   `yaml:"name" json:"name"`
	Version     string   `yaml:"version" json:"version"`
	Title       string   `yaml:"title,omitempty" json:"title,omitempty"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Publisher   string   `yaml:"publisher,omitempty" json:"publisher,omitempty"`
	Keywords    []string `yaml:"keywords,omitempty" json:"keywords,omitempty"`
	Homepage    string   `yaml:"homepage,omitempty" json:"homepage,omitempty"`
	Source      string   `yaml:"source,omitempty" json:"source,omitempty"`
}

// Spec says what the extension needs and offers; Factory and policy read it.
type Spec struct {
	License       string        `yaml:"license" json:"license"`
	Compatibility Compatibility `yaml:"compatibility" json:"compatibility"`
	Dependencies  []Dependency  `yaml:"dependencies,omitempty" json:"dependencies,omitempty"`
	Permissions   []string      `yaml:"permissions,omitempty" json:"permissions,omitempty"`
	Entrypoint    string        `yaml:"entrypoint,omitempty" json:"entrypoint,omitempty"`
	Include       []string      `yaml:"include,omitempty" json:"include,omitempty"`
	Exclude       []string      `yaml:"exclude,omitempty" json:"exclude,omitempty"`
}

// Compatibility holds the Factory versions an extension works with.
type Compatibility struct {
	Factory string `yaml:"factory" json:"factory"`
}

// Dependency is another extension this one needs, by name and constraint.
type Dependency struct {
	Name    string `yaml:"name" json:"name"`
	Version string `yaml:"version" json:"version"`
}

// Publisher is the part of the name before the slash.
func (e *Extension) Publisher() string { p, _, _ := strings.Cut(e.Metadata.Name, "/"); return p }

// ShortName is the part of the name after the slash.
func (e *Extension) ShortName() string { _, n, _ := strings.Cut(e.Metadata.Name, "/"); return n }

// CanonicalJSON is the config blob: encoding/json of the struct, whose field
// order is fixed, so equal descriptors give equal bytes and equal digests.
func (e *Extension) CanonicalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// FieldError is one problem in a descriptor, located by file, line and the
// field's path (metadata.version, spec.dependencies[1].name).
type FieldError = yamlstrict.FieldError

// DescriptorError lists every problem found in a descriptor, so a publisher
// fixes them in one round. It matches ErrInvalidExtension with errors.Is.
type DescriptorError struct {
	Problems []*FieldError
}

func (e *DescriptorError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	if len(lines) == 1 {
		return "invalid extension: " + lines[0]
	}
	return fmt.Sprintf("invalid extension (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Is makes errors.Is(err, ErrInvalidExtension) hold.
func (e *DescriptorError) Is(target error) bool { return target == ErrInvalidExtension }

// LoadExtension reads and validates DIR/extension.yaml.
func LoadExtension(dir string) (*Extension, error) {
	name := filepath.Join(dir, DescriptorFile)
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("load extension: %w", err)
	}
	defer f.Close()
	return ParseExtension(f, name)
}

// DecodeExtension is ParseExtension for a reviewer: when the descriptor
// decodes but breaks the model's rules (an invalid licence, a missing
// entrypoint field), it returns the decoded descriptor beside the
// *DescriptorError, so that each problem can be reported by the check it
// belongs to and the rest of the extension still read. It returns nil
// only when the YAML itself does not decode.
func DecodeExtension(r io.Reader, file string) (*Extension, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDescriptorSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > maxDescriptorSize {
		return nil, &DescriptorError{[]*FieldError{{File: file, Msg: fmt.Sprintf("larger than %d bytes", maxDescriptorSize)}}}
	}
	var ext Extension
	lines, problems := yamlstrict.Decode(data, file, &ext)
	if problems != nil {
		return nil, &DescriptorError{problems}
	}
	return &ext, ext.validate(file, lines)
}

// ParseExtension reads a descriptor strictly: unknown or repeated fields,
// wrong types and invalid values are all errors that name the field and line.
// file is used in messages only.
func ParseExtension(r io.Reader, file string) (*Extension, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDescriptorSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > maxDescriptorSize {
		return nil, &DescriptorError{[]*FieldError{{File: file, Msg: fmt.Sprintf("larger than %d bytes", maxDescriptorSize)}}}
	}
	var ext Extension
	lines, problems := yamlstrict.Decode(data, file, &ext)
	if problems != nil {
		return nil, &DescriptorError{problems}
	}
	if err := ext.validate(file, lines); err != nil {
		return nil, err
	}
	return &ext, nil
}

// ParseConfig reads the config blob of a pulled artifact: the same model in
// its canonical JSON form, held to the same rules. The bytes must be exactly
// the canonical encoding (CanonicalJSON) of what they decode to: exact,
// case-sensitive keys, each once, in order, nothing unknown.
func ParseConfig(data []byte) (*Extension, error) {
	if len(data) > maxDescriptorSize {
		return nil, fmt.Errorf("%w: config larger than %d bytes", ErrInvalidExtension, maxDescriptorSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ext Extension
	if err := dec.Decode(&ext); err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrInvalidExtension, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: config: trailing data after the JSON document", ErrInvalidExtension)
	}
	if err := ext.validate("config", nil); err != nil {
		return nil, err
	}
	// Decoding alone is not enough: encoding/json takes "NAME" for "name"
	// and the last of duplicate keys, where other readers may not.
	canon, err := ext.CanonicalJSON()
	if err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrInvalidExtension, err)
	}
	if !bytes.Equal(canon, data) {
		return nil, configNotCanonical(data, canon)
	}
	return &ext, nil
}

// Validate checks every rule of the model; ParseExtension already calls it.
func (e *Extension) Validate() error { return e.validate(DescriptorFile, nil) }

var (
	namePart       = `[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?`
	nameRE         = regexp.MustCompile(`^` + namePart + `/` + namePart + `$`)
	permissionRE   = regexp.MustCompile(`^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$`)
	keywordRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]{0,31}$`)
	maxKeywords    = 20
	maxDescription = 4096
)

// ValidName reports whether s is a valid publisher/name: two parts of 2..64
// characters from [a-z0-9-], starting and ending alphanumeric so that the
// name is also a valid OCI repository path.
func ValidName(s string) bool {
	if !nameRE.MatchString(s) {
		return false
	}
	p, n, _ := strings.Cut(s, "/")
	return len(p) >= 2 && len(n) >= 2
}

func (e *Extension) validate(file string, lines yamlstrict.Lines) error {
	var problems []*FieldError
	add := func(field, format string, args ...any) {
		problems = append(problems, lines.Problem(file, field, format, args...))
	}
	if e.APIVersion != APIVersion {
		add("apiVersion", "%q is not supported: want %q", e.APIVersion, APIVersion)
	}
	if !e.Kind.Valid() {
		// The descriptor is a strict, schema-checked document: its kind is
		// written as the schema spells it. Flags and query parameters take
		// any case (ParseKind); here the author is told the spelling.
		if k, err := ParseKind(string(e.Kind)); err == nil {
			add("kind", "%q: write it %q (extension.yaml spells kinds as the schema does; --kind flags take any case)", e.Kind, k)
		} else {
			add("kind", "%q is not a kind: want one of Template, Agent, Module, Connector", e.Kind)
		}
	}
	m := e.Metadata
	if m.Name == "" {
		add("metadata.name", "required: <publisher>/<name>")
	} else if !ValidName(m.Name) {
		add("metadata.name", "%q is not <publisher>/<name> with each part 2..64 characters of [a-z0-9-], starting and ending with a letter or digit", m.Name)
	}
	if m.Publisher != "" && ValidName(m.Name) && m.Publisher != e.Publisher() {
		add("metadata.publisher", "%q differs from the publisher in metadata.name (%q)", m.Publisher, e.Publisher())
	}
	if m.Version == "" {
		add("metadata.version", "required: a strict SemVer 2.0 version such as 1.0.0")
	} else if _, err := semver.StrictNewVersion(m.Version); err != nil {
		add("metadata.version", "%q is not strict SemVer 2.0 (MAJOR.MINOR.PATCH, optional -pre-release and +build, no leading v)", m.Version)
	}
	if len(m.Description) > maxDescription {
		add("metadata.description", "longer than %d characters", maxDescription)
	}
	if len(m.Keywords) > maxKeywords {
		add("metadata.keywords", "more than %d keywords", maxKeywords)
	}
	for i, k := range m.Keywords {
		if !keywordRE.MatchString(k) {
			add(fmt.Sprintf("metadata.keywords[%d]", i), "%q is not a keyword: lowercase letters, digits and .+- up to 32 characters", k)
		}
	}
	for _, f := range []struct{ field, v string }{{"metadata.homepage", m.Homepage}, {"metadata.source", m.Source}} {
		if f.v == "" {
			continue
		}
		if u, err := url.Parse(f.v); err != nil || u.Scheme == "" || u.Host == "" {
			add(f.field, "%q is not an absolute URL", f.v)
		}
	}
	s := e.Spec
	if s.License == "" {
		add("spec.license", "required: an SPDX licence expression such as Apache-2.0")
	} else if ok, bad := spdxexp.ValidateLicenses([]string{s.License}); !ok {
		add("spec.license", "%q is not a valid SPDX licence expression (%s)", s.License, strings.Join(bad, ", "))
	}
	if s.Compatibility.Factory == "" {
		add("spec.compatibility.factory", "required: the Factory versions this extension works with, e.g. \">=2.1.0 <3.0.0\"")
	} else if _, err := semver.NewConstraint(s.Compatibility.Factory); err != nil {
		add("spec.compatibility.factory", "%q is not a semver constraint: %v", s.Compatibility.Factory, err)
	}
	seen := map[string]bool{}
	for i, d := range s.Dependencies {
		at := fmt.Sprintf("spec.dependencies[%d]", i)
		switch {
		case !ValidName(d.Name):
			add(at+".name", "%q is not <publisher>/<name>", d.Name)
		case d.Name == m.Name:
			add(at+".name", "an extension cannot depend on itself")
		case seen[d.Name]:
			add(at+".name", "%q is listed twice", d.Name)
		}
		seen[d.Name] = true
		if d.Version == "" {
			add(at+".version", "required: a semver constraint such as ^1.2.0")
		} else if _, err := semver.NewConstraint(d.Version); err != nil {
			add(at+".version", "%q is not a semver constraint: %v", d.Version, err)
		}
	}
	for i, p := range s.Permissions {
		if !permissionRE.MatchString(p) {
			add(fmt.Sprintf("spec.permissions[%d]", i), "%q is not a permission name (dot-separated lowercase words, e.g. secrets.read)", p)
		}
	}
	if s.Entrypoint != "" {
		if err := checkRelPath(s.Entrypoint); err != nil {
			add("spec.entrypoint", "%q %v", s.Entrypoint, err)
		}
	}
	for _, f := range []struct {
		field string
		globs []string
	}{{"spec.include", s.Include}, {"spec.exclude", s.Exclude}} {
		for i, g := range f.globs {
			if !doublestar.ValidatePattern(g) || strings.HasPrefix(g, "/") {
				add(fmt.Sprintf("%s[%d]", f.field, i), "%q is not a valid relative glob", g)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	yamlstrict.Sort(problems)
	return &DescriptorError{problems}
}

// checkRelPath accepts a clean, relative, forward-slash path that stays
// inside the extension directory.
func checkRelPath(p string) error {
	switch {
	case p == "" || p == ".":
		return errors.New("is empty")
	case strings.HasPrefix(p, "/"):
		return errors.New("is absolute")
	case strings.Contains(p, `\`):
		return errors.New("contains a backslash")
	case strings.ContainsRune(p, 0):
		return errors.New("contains a NUL byte")
	case path.Clean(p) != strings.TrimSuffix(p, "/"):
		return errors.New("is not a clean path")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return errors.New("leaves the extension directory")
		}
	}
	return nil
}
