package review

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"golang.org/x/mod/modfile"
)

// Package is a dependency that a manifest inside the extension names at an
// exact version: an SBOM component, and what OSV advisories are matched
// against.
type Package struct {
	// Ecosystem is OSV's: Go, npm or PyPI.
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	// Manifest is the file that names it.
	Manifest string `json:"manifest"`
}

// PURL is the package URL of p.
func (p Package) PURL() string {
	switch p.Ecosystem {
	case "Go":
		return "pkg:golang/" + p.Name + "@" + p.Version
	case "npm":
		name := p.Name
		if strings.HasPrefix(name, "@") {
			name = "%40" + strings.TrimPrefix(name, "@")
		}
		return "pkg:npm/" + name + "@" + url.PathEscape(p.Version)
	case "PyPI":
		return "pkg:pypi/" + normalisePyPI(p.Name) + "@" + url.PathEscape(p.Version)
	}
	return ""
}

type manifestFile struct {
	path string
	data []byte
}

// manifestParsers read the dependency manifests the SBOM covers, by file
// name. Each returns the packages named at an exact version; a range
// (package.json's ^1.2.0) names no version that an advisory can be
// matched against, and the lockfile beside it does.
var manifestParsers = map[string]func([]byte) ([]Package, error){
	"go.mod":              ParseGoMod,
	"package.json":        ParsePackageJSON,
	"package-lock.json":   ParsePackageLock,
	"npm-shrinkwrap.json": ParsePackageLock,
	"requirements.txt":    ParseRequirements,
}

func isManifest(base string) bool {
	_, ok := manifestParsers[base]
	return ok
}

// ParseGoMod reads the requirements of a go.mod (golang.org/x/mod).
func ParseGoMod(data []byte) ([]Package, error) {
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		return nil, err
	}
	var out []Package
	for _, r := range f.Require {
		if r.Mod.Path != "" && r.Mod.Version != "" {
			out = append(out, Package{Ecosystem: "Go", Name: r.Mod.Path, Version: r.Mod.Version})
		}
	}
	return out, nil
}

// exactNPM is an npm version without range operators.
var exactNPM = regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// ParsePackageJSON reads the dependencies of a package.json that are
// pinned to one version.
func ParsePackageJSON(data []byte) ([]Package, error) {
	var pj struct {
		Dependencies         map[string]string `json:"dependencies"`
		DevDependencies      map[string]string `json:"devDependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
	}
	if err := json.Unmarshal(data, &pj); err != nil {
		return nil, err
	}
	var out []Package
	for _, deps := range []map[string]string{pj.Dependencies, pj.DevDependencies, pj.OptionalDependencies} {
		for name, v := range deps {
			if name != "" && exactNPM.MatchString(v) {
				out = append(out, Package{Ecosystem: "npm", Name: name, Version: strings.TrimPrefix(v, "v")})
			}
		}
	}
	return out, nil
}

// ParsePackageLock reads a package-lock.json or npm-shrinkwrap.json:
// "packages" (lockfile v2 and v3) or "dependencies" (v1).
func ParsePackageLock(data []byte) ([]Package, error) {
	type dep struct {
		Version      string          `json:"version"`
		Dependencies json.RawMessage `json:"dependencies"`
	}
	var lock struct {
		Packages     map[string]dep `json:"packages"`
		Dependencies map[string]dep `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, err
	}
	var out []Package
	for key, d := range lock.Packages {
		i := strings.LastIndex(key, "node_modules/")
		name := ""
		if i >= 0 {
			name = key[i+len("node_modules/"):]
		}
		if name == "" || d.Version == "" {
			continue // the root project, or a link
		}
		out = append(out, Package{Ecosystem: "npm", Name: name, Version: d.Version})
	}
	if len(lock.Packages) == 0 {
		var walk func(map[string]dep, int) error
		walk = func(deps map[string]dep, depth int) error {
			if depth > 64 {
				return fmt.Errorf("dependencies nested more than 64 deep")
			}
			for name, d := range deps {
				if name != "" && d.Version != "" {
					out = append(out, Package{Ecosystem: "npm", Name: name, Version: d.Version})
				}
				if len(d.Dependencies) > 0 {
					var sub map[string]dep
					if err := json.Unmarshal(d.Dependencies, &sub); err != nil {
						return err
					}
					if err := walk(sub, depth+1); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if err := walk(lock.Dependencies, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pinned is "name==version" in a requirements file, extras allowed.
var pinned = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*===?\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)$`)

// ParseRequirements reads the pinned requirements of a pip requirements
// file; options (-r, -e, --hash), comments and environment markers are
// skipped, as are ranges.
func ParseRequirements(data []byte) ([]Package, error) {
	var out []Package
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if i := strings.Index(line, ";"); i >= 0 {
			line = line[:i]
		}
		if i := strings.Index(line, " --"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "\\"))
		if line == "" || strings.HasPrefix(line, "-") {
			continue
		}
		if m := pinned.FindStringSubmatch(line); m != nil {
			out = append(out, Package{Ecosystem: "PyPI", Name: m[1], Version: m[3]})
		}
	}
	return out, sc.Err()
}

// sbom builds the CycloneDX document of the files and of the packages the
// manifests name, and returns it with the packages.
func (p *pass) sbom() ([]byte, []Package) {
	var pkgs []Package
	var manifests []string
	for _, m := range p.manifests {
		parse := manifestParsers[path.Base(m.path)]
		got, err := parse(m.data)
		if err != nil {
			p.add(CheckSBOM, Finding{Severity: Low, File: m.path, Message: fmt.Sprintf("dependency manifest does not parse, so its packages are neither in the SBOM nor checked for vulnerabilities: %v", oneLine(err.Error()))})
			continue
		}
		manifests = append(manifests, m.path)
		for i := range got {
			got[i].Manifest = m.path
		}
		pkgs = append(pkgs, got...)
	}
	sort.Slice(pkgs, func(i, j int) bool {
		a, b := pkgs[i], pkgs[j]
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Manifest < b.Manifest
	})

	bom := cdx.NewBOM()
	meta := &cdx.Metadata{Timestamp: p.o.Now.UTC().Format("2006-01-02T15:04:05Z")}
	tools := []cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "mkt review check", Publisher: "ConnectSoft"}}
	meta.Tools = &cdx.ToolsChoice{Components: &tools}
	if p.ext != nil {
		meta.Component = &cdx.Component{
			BOMRef: p.ext.Metadata.Name + "@" + p.ext.Metadata.Version, Type: cdx.ComponentTypeApplication,
			Name: p.ext.Metadata.Name, Version: p.ext.Metadata.Version, Publisher: p.ext.Publisher(),
		}
		if p.ext.Spec.License != "" {
			meta.Component.Licenses = &cdx.Licenses{{Expression: p.ext.Spec.License}}
		}
	}
	bom.Metadata = meta
	comps := make([]cdx.Component, 0, len(p.files)+len(pkgs))
	for _, f := range p.files {
		comps = append(comps, cdx.Component{
			BOMRef: "file:" + f.path, Type: cdx.ComponentTypeFile, Name: f.path,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.sha256}},
		})
	}
	seen := map[string]bool{}
	for _, pk := range pkgs {
		purl := pk.PURL()
		if seen[purl] {
			continue
		}
		seen[purl] = true
		comps = append(comps, cdx.Component{
			BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: pk.Name, Version: pk.Version, PackageURL: purl,
			Properties: &[]cdx.Property{{Name: "connectsoft:manifest", Value: pk.Manifest}},
		})
	}
	bom.Components = &comps
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	enc.SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		p.add(CheckSBOM, Finding{Severity: Medium, Message: "the SBOM could not be written: " + err.Error()})
		return nil, pkgs
	}
	p.summaries[CheckSBOM] = fmt.Sprintf("CycloneDX 1.6: %s, %s from %s", plural(len(p.files), "file"), plural(len(seen), "package"), plural(len(manifests), "manifest"))
	return buf.Bytes(), pkgs
}
