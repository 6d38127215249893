// Package store keeps what the index service knows: ingested versions with
// their decisions, alerts, processed events and API tokens. One interface,
// two drivers chosen by URL scheme (sqlite:// for the embedded default,
// postgres:// for replicas behind a load balancer), one conformance suite
// (storetest) that both pass.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// ErrNotFound is returned for a token, extension or version the store does
// not hold.
var ErrNotFound = errors.New("not found")

// Visibility says who may see an extension (DESIGN §6).
const (
	Internal = "internal"
	Private  = "private"
	Public   = "public"
)

// Blocked is the Lifecycle of a version the operator's control list
// blocks (package control): the catalog hides it and resolution refuses
// it, whatever its publisher's lifecycle statements say.
const Blocked = "blocked"

// Version is one ingested version of one extension in one tenant.
type Version struct {
	Tenant      string   `json:"tenant"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Repository  string   `json:"repository"`
	Digest      string   `json:"digest"`
	Kind        string   `json:"kind"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
	License     string   `json:"license"`
	Factory     string   `json:"factory"`
	Visibility  string   `json:"visibility"`
	Signed      bool     `json:"signed"`
	Reviewed    bool     `json:"reviewed"`
	Allowed     bool     `json:"allowed"`
	Lifecycle   string   `json:"lifecycle,omitempty"`
	// Stage is the stage of the source the version was found in
	// (internal, enterprise or public; "" for a source without one).
	Stage string `json:"stage,omitempty"`
	// Quarantined is true when the version has not passed its stage's
	// policy: it is visible only to its own tenant and to reviewers
	// (DESIGN §6.2), in every list, detail and resolution.
	Quarantined bool            `json:"quarantined"`
	Descriptor  json.RawMessage `json:"descriptor,omitempty"`
	Decision    json.RawMessage `json:"decision,omitempty"`
	Evidence    json.RawMessage `json:"evidence,omitempty"`
	// EvidenceDigests names the evidence manifests (cosign .sig and .att
	// tags, the referrers tag) the decision was made from, as the ingester
	// encodes them: the crawl compares it with the registry's tags, so
	// evidence a notification missed is re-verified.
	EvidenceDigests string    `json:"-"`
	IngestedAt      time.Time `json:"ingestedAt"`
	// Seq orders writes: every create or refresh of a version takes the
	// next number, in commit order, so a reader that has applied the
	// changes up to n has missed none below it (Changes).
	Seq int64 `json:"-"`
	// Generation orders evidence reads: the ingest takes it (Store.Generation,
	// or its event's, taken when the event was queued) before it reads the
	// registry, and UpsertVersion refreshes a stored version only with a
	// generation at least the stored one's, so a slow ingest that read less
	// never overwrites a later one. 0: take one at the write (a writer that
	// read nothing first). Not read back by Version.
	Generation int64 `json:"-"`
}

// Publisher is the part of the name before the slash.
func (v *Version) Publisher() string { p, _, _ := strings.Cut(v.Name, "/"); return p }

// Alert records something an operator should know, such as a moved tag.
type Alert struct {
	ID         int64     `json:"id"`
	Tenant     string    `json:"tenant"`
	Type       string    `json:"type"`
	Name       string    `json:"name"`
	Version    string    `json:"version"`
	Repository string    `json:"repository"`
	OldDigest  string    `json:"oldDigest,omitempty"`
	NewDigest  string    `json:"newDigest,omitempty"`
	Message    string    `json:"message"`
	CreatedAt  time.Time `json:"createdAt"`
}

// AlertTagMoved is raised when a version tag names a new digest.
const AlertTagMoved = "tag-moved"

// AlertIdentityMismatch is raised when an artifact claims a name that is
// not bound to the repository it was found in (DESIGN §6.1): it is
// quarantined, never listed, resolved or installed under that name.
const AlertIdentityMismatch = "identity-mismatch"

// UpsertResult says what UpsertVersion did.
type UpsertResult struct {
	// Created is true when the version was new.
	Created bool
	// Updated is true when the same digest was re-ingested (new evidence
	// or decision) and the record refreshed.
	Updated bool
	// Moved is true when the tag named another digest than the one stored:
	// the first digest stays and Alert records the move.
	Moved bool
	// Stale is true when the version's evidence was not refreshed because
	// it is stored from a registry read of a later generation
	// (Version.Generation): this write read the registry before that one.
	Stale bool
	// Quarantined is true when nothing was stored because the artifact's
	// name is not bound to its repository; Alert records why.
	Quarantined bool
	Alert       *Alert
}

// Token is an API token's record; only the hash of the token is stored.
type Token struct {
	Hash string `json:"-"`
	// ID names the token to operators (list, revoke) without being it: the
	// first TokenIDLength hex digits of its hash.
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is when the API stops accepting the token; zero: never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// RevokedAt is when an operator revoked it; zero: not revoked.
	RevokedAt time.Time `json:"revokedAt,omitzero"`
}

// TokenIDLength is how many hex digits of a token's hash its ID keeps:
// 64 bits, unique among any number of tokens an index holds.
const TokenIDLength = 16

// Token states (Token.State).
const (
	TokenActive  = "active"
	TokenExpired = "expired"
	TokenRevoked = "revoked"
)

// State says whether the API accepts the token at now.
func (t *Token) State(now time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return TokenRevoked
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return TokenExpired
	}
	return TokenActive
}

// Store is the index's persistence. Implementations are safe for
// concurrent use, and every write is idempotent: ingesting the same event
// twice changes nothing the second time.
type Store interface {
	// UsageStore keeps usage events and their daily aggregate (usage.go).
	UsageStore
	// UpsertVersion records v. A version already stored with the same
	// digest is refreshed; with another digest it is kept, and a tag-moved
	// alert is recorded once per new digest.
	UpsertVersion(ctx context.Context, v *Version) (UpsertResult, error)
	// Tagged lists what is stored for a tenant's repository by version
	// tag: the digest and evidence digests a crawl compares with the
	// registry's, in one query, nothing else read.
	Tagged(ctx context.Context, tenant, repository string) (map[string]Tagged, error)
	// Version reads one version whole (descriptor, decision, evidence).
	Version(ctx context.Context, tenant, name, version string) (*Version, error)
	// Versions lists the versions of tenant/name whole, highest SemVer
	// first (SortHighestFirst).
	Versions(ctx context.Context, tenant, name string) ([]*Version, error)
	// Changes lists the versions created or refreshed after seq, in seq
	// order, at most limit of them, without descriptor, decision and
	// evidence: it is the feed the in-memory catalog is kept current by.
	Changes(ctx context.Context, after int64, limit int) ([]*Version, error)
	// ClaimName makes tenant's repository the owner of name unless the
	// name has one, and returns the owner: one name has one owner across
	// the whole index (DESIGN §6.1), the first repository to publish it.
	ClaimName(ctx context.Context, name, tenant, repository string) (*NameOwner, error)
	// AddAlert records an alert other than a moved tag (those come from
	// UpsertVersion); it reports false when the same alert (tenant, type,
	// name, version, new digest) was already recorded.
	AddAlert(ctx context.Context, a *Alert) (bool, error)
	// Alerts lists a tenant's alerts, newest first ("" for all tenants).
	Alerts(ctx context.Context, tenant string) ([]*Alert, error)
	// MarkEvent records an event id; it reports false when already seen.
	MarkEvent(ctx context.Context, id string) (bool, error)
	// EventSeen reports whether an event id was marked.
	EventSeen(ctx context.Context, id string) (bool, error)
	// PutToken stores a token's hash; Token finds it, revoked or expired
	// alike (the caller decides by Token.State).
	PutToken(ctx context.Context, t *Token) error
	Token(ctx context.Context, hash string) (*Token, error)
	// Tokens lists a tenant's tokens ("" for all tenants), newest first.
	Tokens(ctx context.Context, tenant string) ([]*Token, error)
	// RevokeToken revokes the token with the ID and returns it; revoking
	// one already revoked keeps its first revocation time. An unknown ID
	// is ErrNotFound.
	RevokeToken(ctx context.Context, id string) (*Token, error)
	// Statements keeps closed revenue-share statements (index/billing).
	Statements
	// Generation takes the next evidence generation: an increasing number,
	// shared by every replica on the database, that an ingest takes before
	// it reads the registry and writes with the version (Version.Generation).
	Generation(ctx context.Context) (int64, error)
	// Ping checks that the store is reachable (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// Open opens the store a URL names: sqlite://PATH (sqlite://:memory: for a
// throwaway one) or postgres://user@host:port/db. Migrations are applied.
func Open(ctx context.Context, url string) (Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		return openSQLite(ctx, strings.TrimPrefix(url, "sqlite://"))
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return openPostgres(ctx, url)
	}
	return nil, fmt.Errorf("store %q: want sqlite://PATH or postgres://…", url)
}

// NameOwner is the tenant and repository that own an extension name: the
// only place whose versions the index lists under that name.
type NameOwner struct {
	Name       string    `json:"name"`
	Tenant     string    `json:"tenant"`
	Repository string    `json:"repository"`
	ClaimedAt  time.Time `json:"claimedAt"`
}

// CompareVersions orders version strings by SemVer precedence, with
// strings that are not SemVer below all that are (among themselves by
// text). It returns -1, 0 or +1 as a ranks below, equal to or above b.
func CompareVersions(a, b string) int {
	va, ea := semver.StrictNewVersion(a)
	vb, eb := semver.StrictNewVersion(b)
	switch {
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return -1
	case eb != nil:
		return 1
	}
	return va.Compare(vb)
}

// SortHighestFirst orders versions as every list of the index shows them:
// by CompareVersions, highest first.
func SortHighestFirst(vs []*Version) {
	slices.SortStableFunc(vs, func(a, b *Version) int { return CompareVersions(b.Version, a.Version) })
}

// Latest is the version an extension is listed by: the highest stable
// release, or the highest pre-release when there is no stable one, never
// merely the last ingested (re-signing 0.1.0 does not make it latest). vs
// must be sorted by SortHighestFirst; Latest of none is nil.
func Latest(vs []*Version) *Version {
	for _, v := range vs {
		if sv, err := semver.StrictNewVersion(v.Version); err == nil && sv.Prerelease() == "" {
			return v
		}
	}
	if len(vs) == 0 {
		return nil
	}
	return vs[0]
}

// Tagged is what a crawl needs of a stored version to tell whether the
// registry still holds what was decided: the manifest's digest and the
// evidence manifests' digests (Version.EvidenceDigests).
type Tagged struct {
	Digest, EvidenceDigests string
}
