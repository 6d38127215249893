package control

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/internal/yamlstrict"
	"github.com/opencontainers/go-digest"
)

// Kind is the kind of a control list document.
const Kind = "ControlList"

// ArtifactType is the OCI artifactType of a pushed control list.
const ArtifactType = "application/vnd.connectsoft.controllist.v1"

// MediaType is the media type of the list's one layer: the list as JSON.
const MediaType = "application/vnd.connectsoft.controllist.v1+json"

// Actions an entry takes.
const (
	// Block refuses the content everywhere, pinned or not.
	Block = "block"
	// Yank refuses it unless the caller pinned its digest, as a lifecycle
	// yank does.
	Yank = "yank"
)

// ErrInvalidList matches every error about a control list document.
var ErrInvalidList = errors.New("invalid control list")

// maxListSize bounds a list read from a file or a registry.
const maxListSize = 16 << 20

// List is a control list as written (DESIGN §6.3).
type List struct {
	APIVersion string `yaml:"apiVersion" json:"apiVersion"`
	Kind       string `yaml:"kind" json:"kind"`
	// Sequence grows with every list the operator publishes: a consumer
	// refuses a list with a lower sequence than one it has seen.
	Sequence int64 `yaml:"sequence" json:"sequence"`
	// Expires is when the list stops counting: a consumer that cannot get
	// a newer one by then fails closed.
	Expires time.Time `yaml:"expires" json:"expires"`
	Entries []Entry   `yaml:"entries" json:"entries"`
}

// Entry selects content by one of Digest, LayerDigest, ContentDigest,
// PublisherKey or Name (with Versions, or every version), and says what
// to do with it. Digest entries written by `mkt control add` carry the
// layer and content digests as well, so the same files are refused under
// any name.
type Entry struct {
	// Digest is a manifest digest.
	Digest string `yaml:"digest,omitempty" json:"digest,omitempty"`
	// LayerDigest is the digest of the content layer.
	LayerDigest string `yaml:"layerDigest,omitempty" json:"layerDigest,omitempty"`
	// ContentDigest is artifact's content digest: the files other than
	// extension.yaml, however named and packed.
	ContentDigest string `yaml:"contentDigest,omitempty" json:"contentDigest,omitempty"`
	// PublisherKey is the fingerprint (hex SHA-256 of the DER public key,
	// as decisions show it) of a key whose signature blocks an artifact.
	PublisherKey string `yaml:"publisherKey,omitempty" json:"publisherKey,omitempty"`
	// Name is an extension name; Versions, SemVer constraints or exact
	// versions, narrow it (none: every version).
	Name     string   `yaml:"name,omitempty" json:"name,omitempty"`
	Versions []string `yaml:"versions,omitempty" json:"versions,omitempty"`
	Action   string   `yaml:"action" json:"action"`
	Reason   string   `yaml:"reason" json:"reason"`
	// Time is when the operator decided.
	Time time.Time `yaml:"time" json:"time"`

	constraints []*semver.Constraints
}

// Parse reads and checks a control list (YAML or JSON), reporting every
// problem with its field path and line. file names the document in
// messages.
func Parse(data []byte, file string) (*List, error) {
	if len(data) > maxListSize {
		return nil, &Error{Problems: []*yamlstrict.FieldError{{File: file, Msg: fmt.Sprintf("%d bytes, over the %d-byte limit", len(data), maxListSize)}}}
	}
	var l List
	lines, problems := yamlstrict.Decode(data, file, &l)
	if problems != nil {
		return nil, &Error{Problems: problems}
	}
	add := func(field, format string, args ...any) {
		problems = append(problems, lines.Problem(file, field, format, args...))
	}
	if l.APIVersion != artifact.APIVersion {
		add("apiVersion", "%q is not supported: want %q", l.APIVersion, artifact.APIVersion)
	}
	if l.Kind != Kind {
		add("kind", "%q: want %s", l.Kind, Kind)
	}
	if l.Sequence < 1 {
		add("sequence", "must be at least 1 and grow with every list published")
	}
	if l.Expires.IsZero() {
		add("expires", "required: when the list stops counting (RFC 3339, e.g. 2026-12-31T00:00:00Z)")
	}
	for i := range l.Entries {
		l.Entries[i].check(fmt.Sprintf("entries[%d]", i), add)
	}
	if len(problems) > 0 {
		yamlstrict.Sort(problems)
		return nil, &Error{Problems: problems}
	}
	return &l, nil
}

func (e *Entry) check(at string, add func(field, format string, args ...any)) {
	selectors := 0
	if e.Digest != "" {
		selectors++
		if !validDigest(e.Digest) {
			add(at+".digest", "%q is not a sha256 digest (sha256:<64 lowercase hex>)", e.Digest)
		}
	}
	if e.LayerDigest != "" {
		selectors++
		if !validDigest(e.LayerDigest) {
			add(at+".layerDigest", "%q is not a sha256 digest (sha256:<64 lowercase hex>)", e.LayerDigest)
		}
	}
	if e.ContentDigest != "" {
		selectors++
		if !artifact.IsContentDigest(e.ContentDigest) {
			add(at+".contentDigest", "%q is not a content digest (sha256:<64 lowercase hex>; `mkt control add` computes it)", e.ContentDigest)
		}
	}
	if e.PublisherKey != "" {
		selectors++
		if b, err := hex.DecodeString(e.PublisherKey); err != nil || len(b) != 32 || strings.ToLower(e.PublisherKey) != e.PublisherKey {
			add(at+".publisherKey", "%q is not a key fingerprint (64 lowercase hex, as decisions and `mkt inspect` show it)", e.PublisherKey)
		}
	}
	if e.Name != "" {
		selectors++
		if !artifact.ValidName(e.Name) {
			add(at+".name", "%q is not an extension name (publisher/name)", e.Name)
		}
	}
	if len(e.Versions) > 0 && e.Name == "" {
		add(at+".versions", "versions narrow a name: give name as well")
	}
	e.constraints = e.constraints[:0]
	for j, v := range e.Versions {
		c, err := semver.NewConstraint(v)
		if err != nil {
			add(fmt.Sprintf("%s.versions[%d]", at, j), "%q is neither a version nor a constraint: %v", v, err)
			continue
		}
		e.constraints = append(e.constraints, c)
	}
	if selectors == 0 {
		add(at, "selects nothing: give digest, layerDigest, contentDigest, publisherKey or name")
	}
	switch e.Action {
	case Block, Yank:
	case "":
		add(at+".action", "required: block or yank")
	default:
		add(at+".action", "%q: want block or yank", e.Action)
	}
	if strings.TrimSpace(e.Reason) == "" {
		add(at+".reason", "required: say why, for the people it stops")
	}
	if e.Time.IsZero() {
		add(at+".time", "required: when it was decided (RFC 3339)")
	}
}

func validDigest(s string) bool {
	d, err := digest.Parse(s)
	return err == nil && d.Algorithm() == digest.SHA256
}

// Canonical is the list as compact JSON, the form that is pushed.
func (l *List) Canonical() ([]byte, error) { return json.Marshal(l) }

// Subject is what a list is matched against: one version of one
// extension, as far as the caller knows it. Empty fields match nothing.
type Subject struct {
	Name, Version string
	Digest        string
	LayerDigest   string
	ContentDigest string
	// Signers are the fingerprints of keys whose signatures verified.
	Signers []string
}

// Hit is an entry that matches a subject, and by what.
type Hit struct {
	Entry *Entry `json:"entry"`
	// Index is the entry's place in the list.
	Index int `json:"index"`
	// By names the selector that matched: digest, layerDigest,
	// contentDigest, publisherKey or name.
	By string `json:"by"`
}

// Match returns the entries that match s, blocks before yanks. A subject
// with an unknown field (no content digest yet) matches only by the rest.
func (l *List) Match(s Subject) []Hit {
	var hits []Hit
	for i := range l.Entries {
		if by := l.Entries[i].matches(s); by != "" {
			hits = append(hits, Hit{Entry: &l.Entries[i], Index: i, By: by})
		}
	}
	slices.SortStableFunc(hits, func(a, b Hit) int {
		if (a.Entry.Action == Block) == (b.Entry.Action == Block) {
			return 0
		}
		if a.Entry.Action == Block {
			return -1
		}
		return 1
	})
	return hits
}

func (e *Entry) matches(s Subject) string {
	switch {
	case e.Digest != "" && e.Digest == s.Digest:
		return "digest"
	case e.LayerDigest != "" && e.LayerDigest == s.LayerDigest:
		return "layerDigest"
	case e.ContentDigest != "" && e.ContentDigest == s.ContentDigest:
		return "contentDigest"
	case e.PublisherKey != "" && slices.Contains(s.Signers, e.PublisherKey):
		return "publisherKey"
	case e.Name != "" && e.Name == s.Name && e.versionMatches(s.Version):
		return "name"
	}
	return ""
}

func (e *Entry) versionMatches(version string) bool {
	if len(e.Versions) == 0 {
		return true
	}
	if slices.Contains(e.Versions, version) {
		return true
	}
	v, err := semver.StrictNewVersion(version)
	if err != nil {
		return false
	}
	for _, c := range e.constraints {
		if c.Check(v) {
			return true
		}
	}
	return false
}

// Describe says what an entry selects, for messages.
func (e *Entry) Describe() string {
	var parts []string
	if e.Name != "" {
		n := e.Name
		if len(e.Versions) > 0 {
			n += "@" + strings.Join(e.Versions, ",")
		}
		parts = append(parts, n)
	}
	for _, p := range []struct{ k, v string }{{"digest", e.Digest}, {"layer", e.LayerDigest}, {"content", e.ContentDigest}, {"publisher key", e.PublisherKey}} {
		if p.v != "" {
			parts = append(parts, p.k+" "+short(p.v))
		}
	}
	return strings.Join(parts, ", ")
}

func short(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 && len(s) > i+13 {
		return s[:i+13]
	}
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

// Error lists every problem of a control list document.
type Error struct{ Problems []*yamlstrict.FieldError }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	if len(lines) == 1 {
		return "invalid control list: " + lines[0]
	}
	return fmt.Sprintf("invalid control list (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Is makes errors.Is(err, ErrInvalidList) hold.
func (e *Error) Is(target error) bool { return target == ErrInvalidList }
