package artifact

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
)

// InitOptions fill the starter descriptor that InitExtension writes.
type InitOptions struct {
	Kind    Kind
	Name    string // publisher/name
	Version string // default 0.1.0
	License string // default Apache-2.0
	Factory string // default ">=2.0.0 <3.0.0"
}

// starter is parsed on first use, not at start-up.
var starter = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("extension.yaml").Parse(`apiVersion: {{.API}}
kind: {{.Kind}}
metadata:
  name: {{.Name}}
  version: {{.Version}}
  title: {{.Title}}
  description: Describe what this {{.Lower}} does for Factory users.
  keywords: []
spec:
  license: {{.License}}
  compatibility:
    factory: "{{.Factory}}"
  dependencies: []
  permissions: []
  entrypoint: {{.Entrypoint}}
`))
})

// InitExtension writes a starter extension.yaml and an empty entrypoint in
// dir (created if missing). It refuses to overwrite an existing descriptor,
// and the descriptor it writes passes validation.
func InitExtension(dir string, o InitOptions) (string, error) {
	if !o.Kind.Valid() {
		return "", fmt.Errorf("init: %q is not a kind: want one of Template, Agent, Module, Connector", o.Kind)
	}
	if !ValidName(o.Name) {
		return "", fmt.Errorf("init: %q is not <publisher>/<name> (lowercase [a-z0-9-], 2..64 characters each)", o.Name)
	}
	o.Version = firstNonEmpty(o.Version, "0.1.0")
	o.License = firstNonEmpty(o.License, "Apache-2.0")
	o.Factory = firstNonEmpty(o.Factory, ">=2.0.0 <3.0.0")
	lower := strings.ToLower(string(o.Kind))
	entry := lower + "/main.yaml"
	_, short, _ := strings.Cut(o.Name, "/")
	var buf bytes.Buffer
	err := starter().Execute(&buf, map[string]string{
		"API": APIVersion, "Kind": string(o.Kind), "Name": o.Name, "Version": o.Version,
		"Title": short, "Lower": lower, "License": o.License, "Factory": o.Factory, "Entrypoint": entry,
	})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, DescriptorFile)
	if _, err := ParseExtension(bytes.NewReader(buf.Bytes()), path); err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, lower), 0o755); err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("init: %s already exists", path)
	}
	if err != nil {
		return "", fmt.Errorf("init: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return "", fmt.Errorf("init: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	entryPath := filepath.Join(dir, filepath.FromSlash(entry))
	if _, err := os.Stat(entryPath); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(entryPath, []byte("# "+o.Kind+" entrypoint: Factory loads this file.\n"), 0o644); err != nil {
			return "", fmt.Errorf("init: %w", err)
		}
	}
	return path, nil
}
