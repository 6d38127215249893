// Package index is the index service: it ingests extensions from registries
// (notification webhooks and a periodic crawl), verifies each version
// against a policy at ingest, and serves search, resolution, tenancy and
// alerts from a store.
package index

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/internal/yamlstrict"
	"github.com/connectsoft/marketplace/signing"
)

// Config is index.yaml (DESIGN §6).
type Config struct {
	Listen        string   `yaml:"listen"`
	Store         string   `yaml:"store"`
	Policy        string   `yaml:"policy"`
	WebhookSecret string   `yaml:"webhookSecret"`
	Operator      string   `yaml:"operator"` // the tenant that may see internal extensions
	Sources       []Source `yaml:"sources"`
	// Publishers bind publisher namespaces to a tenant, repositories and
	// keys (DESIGN §6.1); a namespace without an entry gets the default
	// binding (see Ingester.Publishers).
	Publishers []Publisher `yaml:"publishers"`
	// OperatorKeys are the operator's public keys, which sign publisher
	// verifications (publishers[].verification).
	OperatorKeys []string `yaml:"operatorKeys"`
	// Stages name the policy each stage's versions must pass to leave
	// quarantine (DESIGN §6.2); a source joins a stage by its stage field.
	Stages []Stage `yaml:"stages"`
	// PublicURL is the index's address as users reach it, shown in install
	// commands. Without it the pages show a placeholder: the request's
	// Host header is the caller's to forge and is never echoed.
	PublicURL string `yaml:"publicURL"`
	// ReadTimeout, WriteTimeout and IdleTimeout bound each HTTP connection
	// (zero: DefaultReadTimeout etc.), so that clients which stop reading
	// or keep idle connections open do not hold them forever.
	ReadTimeout  time.Duration `yaml:"readTimeout"`
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	IdleTimeout  time.Duration `yaml:"idleTimeout"`
	// Queue tunes the durable ingest queue (zero values: the defaults).
	Queue QueueOptions `yaml:"queue"`
	// Usage says whose usage a registry pull is (DESIGN §6.4).
	Usage UsageConfig `yaml:"usage"`
	// Subscriptions receive events as CloudEvents (DESIGN §6.5), delivered
	// through the queue as Delivery says.
	Subscriptions []Subscription  `yaml:"subscriptions"`
	Delivery      DeliveryOptions `yaml:"delivery"`
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
	// Stage is the stage (one of Config.Stages) whose policy this source's
	// versions must pass; until they do they are quarantined. Without a
	// stage, the index-wide policy decides and nothing is quarantined.
	Stage string `yaml:"stage"`
}

// Stage is one of the phases an extension passes through (DESIGN §6.2):
// internal catalog, private enterprise marketplace, public marketplace.
// Its policy decides which versions leave quarantine.
type Stage struct {
	Name string `yaml:"name"`
	// Policy is the stage's policy file, relative to the config.
	Policy string `yaml:"policy"`
}

// StageNames are the stages there are, in the order an extension is
// promoted through them.
var StageNames = []string{"internal", "enterprise", "public"}

// checkStages validates stages: and each source's stage.
func checkStages(c *Config, add func(field, format string, args ...any)) {
	defined := map[string]bool{}
	for i, st := range c.Stages {
		at := fmt.Sprintf("stages[%d]", i)
		switch {
		case !slices.Contains(StageNames, st.Name):
			add(at+".name", "%q: want internal, enterprise or public", st.Name)
		case defined[st.Name]:
			add(at+".name", "stage %q is defined twice", st.Name)
		}
		defined[st.Name] = true
		if st.Policy == "" {
			add(at+".policy", "required: the policy file a version of this stage must pass to leave quarantine")
		}
	}
	for i, s := range c.Sources {
		if s.Stage != "" && !defined[s.Stage] {
			add(fmt.Sprintf("sources[%d].stage", i), "%q is not one of the stages: entries (define it there with its policy)", s.Stage)
		}
	}
}

// StagePolicyPath is the policy file of stage name, relative paths taken
// from the config's directory; "" when no such stage is defined.
func (c *Config) StagePolicyPath(name string) string {
	for _, st := range c.Stages {
		if st.Name == name {
			if filepath.IsAbs(st.Policy) {
				return st.Policy
			}
			return filepath.Join(c.Dir, st.Policy)
		}
	}
	return ""
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

// Publisher is a publisher namespace bound to the one tenant it belongs to,
// the repositories its extensions may live in and its signing keys
// (DESIGN §6.1). An artifact naming the namespace found anywhere else is
// quarantined at ingest with an identity-mismatch alert.
type Publisher struct {
	Name   string `yaml:"name"`
	Tenant string `yaml:"tenant"`
	// Repositories are globs over registry/repository, such as
	// registry.example.com/acme/**.
	Repositories []string `yaml:"repositories"`
	// Keys are the publisher's public keys (files relative to the config,
	// inline PEM or KMS references). The index records them; policies
	// scope their trust roots to namespaces themselves (DESIGN §5).
	Keys []string `yaml:"keys"`
	// Tier is how far the operator vouches for the publisher: official,
	// verified or community (the default).
	Tier string `yaml:"tier"`
	// Verification is a file holding the operator's publisher/v1
	// attestation of this binding (mkt publisher verify), a DSSE envelope.
	// Tier official or verified shows as verified only when it verifies
	// with one of operatorKeys and states exactly this name, tenant, tier
	// and keys.
	Verification string `yaml:"verification"`
	// Fingerprints are the loaded keys' fingerprints (KMS references are
	// recorded unloaded, as Keys names them).
	Fingerprints []string `yaml:"-"`
	// Verified is true when Verification verified (see above), and
	// VerificationNote says why not, or by which operator key.
	Verified         bool   `yaml:"-"`
	VerificationNote string `yaml:"-"`
}

// Tiers are the publisher tiers, from the most vouched for.
var Tiers = []string{"official", "verified", "community"}

// Binds reports whether registry/repository (as one string) is one of the
// publisher's repositories.
func (p *Publisher) Binds(repository string) bool {
	for _, g := range p.Repositories {
		if ok, _ := doublestar.Match(g, repository); ok {
			return true
		}
	}
	return false
}

// namespaceName is what a publisher namespace may be (DESIGN §2).
var namespaceName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,63}$`)

// checkPublishers validates publishers: entries, loading the keys they
// name (relative to dir) so that a typo fails at start, not at ingest.
func checkPublishers(c *Config, dir string, add func(field, format string, args ...any)) {
	names := map[string]bool{}
	for i := range c.Publishers {
		p := &c.Publishers[i]
		at := fmt.Sprintf("publishers[%d]", i)
		switch {
		case !namespaceName.MatchString(p.Name):
			add(at+".name", "%q: want a publisher namespace, lowercase [a-z0-9-], 2 to 64 characters", p.Name)
		case names[p.Name]:
			add(at+".name", "%q is bound twice: a namespace belongs to exactly one tenant", p.Name)
		}
		names[p.Name] = true
		if p.Tenant == "" {
			add(at+".tenant", "required: the tenant the namespace belongs to")
		}
		if len(p.Repositories) == 0 {
			add(at+".repositories", "required: globs over registry/repository, such as registry.example.com/%s/**", p.Name)
		}
		for j, g := range p.Repositories {
			if !doublestar.ValidatePattern(g) || !strings.Contains(g, "/") {
				add(fmt.Sprintf("%s.repositories[%d]", at, j), "%q is not a glob over registry/repository", g)
			}
		}
		if p.Tier == "" {
			p.Tier = "community"
		} else if !slices.Contains(Tiers, p.Tier) {
			add(at+".tier", "%q: want official, verified or community", p.Tier)
		}
		for j, k := range p.Keys {
			if strings.Contains(k, "://") { // a KMS reference: recorded, loaded where it is used
				continue
			}
			key, err := signing.LoadKey(context.Background(), configPath(dir, k))
			if err != nil {
				add(fmt.Sprintf("%s.keys[%d]", at, j), "%v", err)
				continue
			}
			p.Fingerprints = append(p.Fingerprints, key.Fingerprint)
		}
	}
	checkVerifications(c, dir, add)
}

// configPath resolves a file the config names: relative to its directory,
// inline PEM as it is.
func configPath(dir, ref string) string {
	if strings.Contains(ref, "-----BEGIN") || strings.Contains(ref, "://") || filepath.IsAbs(ref) {
		return ref
	}
	return filepath.Join(dir, ref)
}

// checkVerifications decides each publisher's Verified: an operator key's
// publisher/v1 attestation stating exactly its binding. A verification
// that does not verify is no config error (the publisher shows as not
// verified, and the note says why); an operator key or a verification file
// that cannot be read is.
func checkVerifications(c *Config, dir string, add func(field, format string, args ...any)) {
	var opKeys []*signing.Key
	for i, k := range c.OperatorKeys {
		key, err := signing.LoadKey(context.Background(), configPath(dir, k))
		if err != nil {
			add(fmt.Sprintf("operatorKeys[%d]", i), "%v", err)
			continue
		}
		opKeys = append(opKeys, key)
	}
	for i := range c.Publishers {
		p := &c.Publishers[i]
		switch {
		case p.Verification == "" && p.Tier == "community":
			p.VerificationNote = "community publishers are not verified"
			continue
		case p.Verification == "":
			p.VerificationNote = "tier " + p.Tier + " claimed, but no operator attestation (publishers[].verification) backs it"
			continue
		case len(c.OperatorKeys) == 0:
			add(fmt.Sprintf("publishers[%d].verification", i), "needs operatorKeys: the operator's public keys that verify it")
			continue
		}
		env, err := os.ReadFile(configPath(dir, p.Verification))
		if err != nil {
			add(fmt.Sprintf("publishers[%d].verification", i), "%v", err)
			continue
		}
		want := &signing.Publisher{Name: p.Name, Tenant: p.Tenant, Tier: p.Tier, Keys: p.Fingerprints}
		if _, fp, err := signing.VerifyPublisher(context.Background(), env, opKeys, want, time.Now()); err != nil {
			p.VerificationNote = err.Error()
		} else {
			p.Verified, p.VerificationNote = true, "verified by the operator's key "+fp[:16]
		}
	}
}

// checkPublicURL checks publicURL: an absolute http(s) URL of the index.
func checkPublicURL(raw string, add func(field, format string, args ...any)) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		add("publicURL", "%q: want the index's address as users reach it, such as https://index.example.com", raw)
	}
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
	if problems == nil {
		checkPublishers(&c, filepath.Dir(path), add)
		checkStages(&c, add)
		checkPublicURL(c.PublicURL, add)
		for _, d := range []struct {
			field string
			d     time.Duration
		}{{"readTimeout", c.ReadTimeout}, {"writeTimeout", c.WriteTimeout}, {"idleTimeout", c.IdleTimeout},
			{"queue.backoff", c.Queue.Backoff}, {"queue.maxBackoff", c.Queue.MaxBackoff}, {"queue.attemptTimeout", c.Queue.AttemptTimeout},
			{"queue.rescueAfter", c.Queue.RescueAfter}, {"queue.pollInterval", c.Queue.PollInterval}} {
			if d.d < 0 {
				add(d.field, "%s: want a positive duration (or none for the default)", d.d)
			}
		}
		checkQueue(c.Queue, add)
		checkUsage(c.Usage, add)
		checkSubscriptions(&c, add)
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

// checkQueue refuses queue settings that would lose or double events: a
// claimed event rescued while its worker may still run it would be
// ingested twice at once.
func checkQueue(q QueueOptions, add func(field, format string, args ...any)) {
	if q.Workers < 0 {
		add("queue.workers", "%d: want a positive number (or none for the default, 64)", q.Workers)
	}
	if q.MaxAttempts < 0 {
		add("queue.maxAttempts", "%d: want a positive number (or none for the default, 8)", q.MaxAttempts)
	}
	d := q.withDefaults()
	if q.RescueAfter > 0 && q.RescueAfter <= d.AttemptTimeout {
		add("queue.rescueAfter", "%s: must exceed queue.attemptTimeout (%s), or an event still being ingested would be run again by another replica", q.RescueAfter, d.AttemptTimeout)
	}
}

// queueOptions are the ingest queue's settings from the config, logging to log.
func (c *Config) queueOptions(log *slog.Logger) QueueOptions {
	o := c.Queue
	o.Log = log
	return o
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

// DevTrust is what `mkt dev up` trusts, so that its first try shows honest
// badges: a dev key pair and a policy, in enforce mode, that requires a
// signature by that key. A version pushed and signed with Key shows
// "signed" and "policy passed"; one not signed shows neither.
type DevTrust struct {
	Key       string `json:"key"`       // cosign.key format, no password (COSIGN_PASSWORD="")
	PublicKey string `json:"publicKey"` // cosign.pub format
	Policy    string `json:"policy"`
}

// devPolicy requires a signature by the dev key on everything. Enforce
// rather than audit: audit would allow (and resolve) unsigned versions,
// which is not what the badges of a real index would teach.
const devPolicy = `apiVersion: marketplace.connectsoft.io/v1
kind: Policy
mode: enforce
trustRoots:
  - name: dev
    keys: [dev.pub]
rules:
  - name: signed-by-the-dev-key
    match: {repositories: ["**"]}
    signatures: {trustRoots: [dev]}
`

// WriteDevTrust makes a dev key pair in dir, or reuses the one there (so
// that what was signed in an earlier session stays trusted), and writes the
// dev policy next to it.
func WriteDevTrust(dir string) (*DevTrust, error) {
	// Absolute, because the paths are read from elsewhere: the dev index
	// loads the policy from its own directory, and a relative --dev-dir
	// named a policy that was not there.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dev key directory: %w", err)
	}
	t := &DevTrust{Key: filepath.Join(dir, "dev.key"), PublicKey: filepath.Join(dir, "dev.pub"), Policy: filepath.Join(dir, "dev-policy.yaml")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev key directory: %w", err)
	}
	_, errKey := os.Stat(t.Key)
	_, errPub := os.Stat(t.PublicKey)
	if errKey != nil || errPub != nil {
		priv, pub, err := signing.GenerateKeyPair(func(bool) ([]byte, error) { return []byte{}, nil })
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(t.Key, priv, 0o600); err != nil {
			return nil, fmt.Errorf("write the dev key: %w", err)
		}
		if err := os.WriteFile(t.PublicKey, pub, 0o644); err != nil {
			return nil, fmt.Errorf("write the dev public key: %w", err)
		}
	}
	if err := os.WriteFile(t.Policy, []byte(devPolicy), 0o644); err != nil {
		return nil, fmt.Errorf("write the dev policy: %w", err)
	}
	return t, nil
}
