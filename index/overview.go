package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/billing"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/signing"
)

// Overview is what the extension page (and the details answer, as
// "overview") shows of the latest version the caller may see, beyond its
// summary: its README, what it asks of Factory and needs, the evidence
// that backs it, its terms and who signed it. Everything is read from
// that version as stored (descriptor and evidence, checked at ingest
// against the keys of the index's policy) and from the index config: no
// registry is asked, no attestation checked a second time.
type Overview struct {
	// Version is the version described: the extension's latest.
	Version string `json:"version"`
	// Readme is its README.md, rendered and sanitised (readme.go); nil
	// when it has none, or none was read (the page shows the
	// description).
	Readme *ReadmeView `json:"readme,omitempty"`
	// Permissions and Dependencies are the descriptor's.
	Permissions  []string              `json:"permissions"`
	Dependencies []artifact.Dependency `json:"dependencies"`
	Compat       CompatibilityView     `json:"compatibility"`
	Review       ReviewView            `json:"review"`
	Terms        *TermsView            `json:"terms,omitempty"`
	Signers      []string              `json:"signers"`
	Publisher    PublisherTier         `json:"publisher"`
	// Problems are terms attestations that were ignored, and why.
	Problems []string `json:"problems,omitempty"`
}

// ReadmeView is a rendered README.
type ReadmeView struct {
	HTML template.HTML `json:"html"`
	// Size is the README's whole size; Shown how much of it was
	// rendered, less when Truncated (the first 256 KiB are kept).
	Size      int64 `json:"size"`
	Shown     int   `json:"shown"`
	Truncated bool  `json:"truncated"`
}

// CompatibilityView is the Factory range the descriptor declares and the
// newest compatibility attestation, preferring a verified one.
type CompatibilityView struct {
	Declared string                 `json:"declared"`
	Attested *CompatibilityEvidence `json:"attested,omitempty"`
}

// CompatibilityEvidence is one compatibility attestation as ingested:
// who signed it and whether a key that counts verified it.
type CompatibilityEvidence struct {
	signing.Compatibility
	Fingerprint string `json:"fingerprint,omitempty"`
	Verified    bool   `json:"verified"`
}

// ReviewView is the review evidence of the version, as the review queue
// reads it (reviewItem): the automated checks' newest review and the
// reviews people signed (curator approvals), newest first.
type ReviewView struct {
	Pipeline *ReviewStatement  `json:"pipeline"`
	Reviews  []ReviewStatement `json:"reviews"`
}

// TermsView is the terms attestation in force now (or, when none is yet,
// the first to come), as billing reads it (billing.TrustedTerms): only
// verified terms signed by a key of the extension's publisher count.
type TermsView struct {
	Model            string    `json:"model"`
	Price            string    `json:"price"`
	Currency         string    `json:"currency,omitempty"`
	Unit             string    `json:"unit,omitempty"`
	PublisherPercent string    `json:"publisherPercent"`
	PlatformPercent  string    `json:"platformPercent"`
	AgreementID      string    `json:"agreementId,omitempty"`
	EffectiveDate    time.Time `json:"effectiveDate"`
	Upcoming         bool      `json:"upcoming,omitempty"`
	Signer           string    `json:"signer"`
}

// PublisherTier is the publisher's tier from the index config
// (publishers:), community without an entry.
type PublisherTier struct {
	Name     string `json:"name"`
	Tier     string `json:"tier"`
	Verified bool   `json:"verified"`
}

type storedEvidence struct {
	Signatures   []signing.SignatureResult   `json:"signatures"`
	Attestations []signing.AttestationResult `json:"attestations"`
}

// readmesCached bounds the rendered READMEs kept (at most a few hundred
// KiB each, most a few KiB).
const readmesCached = 256

// overview describes v, a version the viewer may see, whole.
func (a *API) overview(ctx context.Context, v *store.Version, now time.Time) (*Overview, error) {
	o := &Overview{Version: v.Version, Permissions: []string{}, Dependencies: []artifact.Dependency{}, Signers: []string{},
		Review: ReviewView{Reviews: []ReviewStatement{}}, Publisher: PublisherTier{Name: v.Publisher(), Tier: "community"}}
	if p := findPublisher(a.Publishers, v.Publisher()); p != nil {
		o.Publisher.Tier, o.Publisher.Verified = p.Tier, p.Verified
	}
	var ext artifact.Extension
	if len(v.Descriptor) > 0 {
		if err := json.Unmarshal(v.Descriptor, &ext); err != nil {
			return nil, fmt.Errorf("%s@%s: stored descriptor: %w", v.Name, v.Version, err)
		}
	}
	o.Permissions = append(o.Permissions, ext.Spec.Permissions...)
	o.Dependencies = append(o.Dependencies, ext.Spec.Dependencies...)
	o.Compat.Declared = v.Factory
	var ev storedEvidence
	if len(v.Evidence) > 0 {
		if err := json.Unmarshal(v.Evidence, &ev); err != nil {
			return nil, fmt.Errorf("%s@%s: stored evidence: %w", v.Name, v.Version, err)
		}
	}
	for _, s := range ev.Signatures {
		if s.Verified && s.Fingerprint != "" && !slices.Contains(o.Signers, s.Fingerprint) {
			o.Signers = append(o.Signers, s.Fingerprint)
		}
	}
	o.Compat.Attested = newestCompatibility(ev.Attestations)
	item, err := reviewItem(v)
	if err != nil {
		return nil, err
	}
	o.Review.Pipeline, o.Review.Reviews = item.Pipeline, item.Reviews
	o.Terms, o.Problems = a.termsInForce(v, now)
	if o.Readme, err = a.readme(ctx, v.Digest); err != nil {
		return nil, err
	}
	return o, nil
}

// newestCompatibility is the newest compatibility statement, a verified
// one over any unverified one (anyone can attach a statement), as the
// review queue picks the pipeline's review.
func newestCompatibility(ats []signing.AttestationResult) *CompatibilityEvidence {
	var best *CompatibilityEvidence
	for _, at := range ats {
		if at.PredicateType != signing.CompatibilityV1 || at.Statement == nil {
			continue
		}
		var c signing.Compatibility
		if json.Unmarshal(at.Statement.Predicate, &c) != nil {
			continue
		}
		st := &CompatibilityEvidence{Compatibility: c, Fingerprint: at.Fingerprint, Verified: at.Verified}
		if best == nil || st.Verified && !best.Verified || st.Verified == best.Verified && st.Time.After(best.Time) {
			best = st
		}
	}
	return best
}

// termsInForce reads v's terms as billing does, trusting only its
// publisher's keys when the config names some (billing.Builder).
func (a *API) termsInForce(v *store.Version, now time.Time) (*TermsView, []string) {
	var trusted func(string) bool
	if p := findPublisher(a.Publishers, v.Publisher()); p != nil && len(p.Fingerprints) > 0 {
		trusted = func(fp string) bool { return slices.Contains(p.Fingerprints, fp) }
	}
	terms, problems := billing.TrustedTerms(v.Evidence, trusted)
	segs := billing.Segments(v.Name, v.Version, terms)
	var pick *billing.Segment
	for i := range segs {
		if !segs[i].From.After(now) {
			pick = &segs[i]
		}
	}
	upcoming := false
	if pick == nil && len(segs) > 0 {
		pick, upcoming = &segs[0], true
	}
	if pick == nil {
		return nil, problems
	}
	t := pick.Terms
	return &TermsView{Model: t.Model, Price: t.Price.Text('f'), Currency: t.Currency, Unit: t.Unit,
		PublisherPercent: t.PublisherPercent.Text('f'), PlatformPercent: t.PlatformPercent.Text('f'),
		AgreementID: t.AgreementID, EffectiveDate: t.EffectiveDate, Upcoming: upcoming, Signer: t.Signer}, problems
}

// readme renders the README stored for digest, cached by digest (a
// digest names fixed content); nil when the store keeps none.
func (a *API) readme(ctx context.Context, digest string) (*ReadmeView, error) {
	if r, ok := a.readmes.Get(digest); ok {
		return r, nil
	}
	rs, ok := a.Store.(store.ReadmeStore)
	if !ok {
		return nil, nil
	}
	r, err := rs.Readme(ctx, digest)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // not read yet: the next ingest reads it
	}
	if err != nil {
		return nil, err
	}
	var view *ReadmeView
	if r.Found {
		view = &ReadmeView{HTML: RenderReadme(r.Text), Size: r.Size, Shown: len(r.Text), Truncated: r.Truncated}
	}
	a.readmes.Add(digest, view)
	return view, nil
}

// lifecycleNote is why a version is deprecated or yanked, and its
// successor, from its stored decision: the lifecycle statement that
// decided it, or the control list entry that yanked or blocked it.
func lifecycleNote(v *store.Version) (reason, successor string) {
	if v.Lifecycle == "" || v.Lifecycle == "active" || len(v.Decision) == 0 {
		return "", ""
	}
	var d struct {
		Lifecycle *policy.Lifecycle      `json:"lifecycle"`
		Control   *policy.ControlVerdict `json:"control"`
	}
	if json.Unmarshal(v.Decision, &d) != nil {
		return "", ""
	}
	if c := d.Control; c != nil && c.Action != "" && (c.Action == v.Lifecycle || v.Lifecycle == store.Blocked) {
		return c.Reason, ""
	}
	if l := d.Lifecycle; l != nil && l.Status == v.Lifecycle {
		return l.Reason, l.Successor
	}
	return "", ""
}
