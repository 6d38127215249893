// Package index is the index service: it ingests extensions from registries
// (notification webhooks and a periodic crawl), verifies each version
// against a policy at ingest, and serves search, resolution, tenancy and
// alerts from a store.
package index

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/internal/yamlstrict"
)

// Config is index.yaml (DESIGN §6).
type Config struct {
	Listen        string   `yaml:"listen"`
	Store         string   `yaml:"store"`
	Policy        string   `yaml:"policy"`
	WebhookSecret string   `yaml:"webhookSecret"`
	Operator      string   `yaml:"operator"` // the tenant that may see internal extensions
	Sources       []Source `yaml:"sources"`
	// Dir is the directory of the config file; relative paths are against it.
	Dir string `yaml:"-"`
}

// Source is a registry, or part of one, mapped to a tenant and visibility.
type Source struct {
	Name         string        `yaml:"name"`
	Registry     string        `yaml:"registry"`
	PlainHTTP    bool          `yaml:"plainHTTP"`
	Repositories []string      `yaml:"repositories"`
	Tenant       string        `yaml:"tenant"`
	Visibility   string        `yaml:"visibility"`
	Interval     time.Duration `yaml:"interval"`
	// CrawlTimeout bounds one reconcile of this source (default: its
	// interval), so that a registry that accepts and never answers ends
	// the crawl with an error and the next interval still runs.
	CrawlTimeout time.Duration `yaml:"crawlTimeout"`
}

// Matches reports whether registry/repository belongs to this source.
func (s *Source) Matches(registry, repository string) bool {
	if registry != s.Registry {
		return false
	}
	for _, g := range s.Repositories {
		if ok, _ := doublestar.Match(g, repository); ok {
			return true
		}
	}
	return false
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadConfig reads index.yaml, expanding ${NAME} from the environment (an
// unset variable is an error, so a missing secret is never empty).
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load index config: %w", err)
	}
	var missing []string
	data := envRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		name := string(envRef.FindSubmatch(m)[1])
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("index config %s: environment variables not set: %v", path, missing)
	}
	var c Config
	lines, problems := yamlstrict.Decode(data, path, &c)
	add := func(field, format string, args ...any) {
		problems = append(problems, lines.Problem(path, field, format, args...))
	}
	if problems == nil {
		if c.Listen == "" {
			c.Listen = "127.0.0.1:8080"
		}
		if c.Store == "" {
			add("store", "required: sqlite://PATH or postgres://…")
		}
		names := map[string]bool{}
		for i, s := range c.Sources {
			at := fmt.Sprintf("sources[%d]", i)
			if s.Name == "" || names[s.Name] {
				add(at+".name", "required and unique")
			}
			names[s.Name] = true
			if s.Registry == "" {
				add(at+".registry", "required")
			}
			if len(s.Repositories) == 0 {
				add(at+".repositories", "required: globs such as acme/**")
			}
			for j, g := range s.Repositories {
				if !doublestar.ValidatePattern(g) {
					add(fmt.Sprintf("%s.repositories[%d]", at, j), "%q is not a valid glob", g)
				}
			}
			if s.Tenant == "" {
				add(at+".tenant", "required")
			}
			switch s.Visibility {
			case store.Internal, store.Private, store.Public:
			default:
				add(at+".visibility", "%q: want internal, private or public", s.Visibility)
			}
			if s.Interval == 0 {
				c.Sources[i].Interval = 5 * time.Minute
			}
			if s.CrawlTimeout == 0 {
				c.Sources[i].CrawlTimeout = c.Sources[i].Interval
			}
		}
	}
	if len(problems) > 0 {
		yamlstrict.Sort(problems)
		msg := ""
		for _, p := range problems {
			msg += "\n  " + p.Error()
		}
		return nil, fmt.Errorf("invalid index config:%s", msg)
	}
	c.Dir = filepath.Dir(path)
	return &c, nil
}

// DevConfig is the configuration `mkt dev up` runs: one source covering the
// whole embedded registry, public, in a "dev" tenant, with the store in dir.
func DevConfig(registry, dir, secret string) *Config {
	return &Config{
		Store:         "sqlite://" + filepath.Join(dir, "index.db"),
		WebhookSecret: secret,
		Operator:      "dev",
		Dir:           dir,
		Sources: []Source{{Name: "dev", Registry: registry, PlainHTTP: true, Repositories: []string{"**"},
			Tenant: "dev", Visibility: store.Public, Interval: time.Minute}},
	}
}
