package index

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/policy"
	"github.com/connectsoft/marketplace/signing"
)

// The review queue (DESIGN §6.2): the versions of a stage that have not
// passed its policy, for the reviewer role, oldest first, each with the
// automated findings of the pipeline's review attestation (mkt review
// check --attest, reviewer "pipeline") and the reviews people signed, as
// the index ingested them. Nothing here decides: a reviewer's approval is
// an attestation pushed to the registry, and the ingest that follows it
// (the webhook, or the crawl) re-evaluates the stage's policy.

// Review statuses (GET /api/v1/reviews?status=).
const (
	ReviewPending = "pending" // quarantined: not passed its stage's policy yet
	ReviewPassed  = "passed"  // in a stage, and passed its policy
)

// ReviewItem is one version in the review queue.
type ReviewItem struct {
	Tenant      string    `json:"tenant"`
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Repository  string    `json:"repository"`
	Digest      string    `json:"digest"`
	Stage       string    `json:"stage"`
	Quarantined bool      `json:"quarantined"`
	IngestedAt  time.Time `json:"ingestedAt"`
	// Failed are the stage policy's failed checks: why it is pending.
	Failed []string `json:"failed"`
	// Pipeline is the newest review by reviewer "pipeline" (the
	// automated checks), nil when none was attested.
	Pipeline *ReviewStatement `json:"pipeline"`
	// Reviews are the other review statements, newest first.
	Reviews []ReviewStatement `json:"reviews"`
}

// ReviewStatement is one review attestation as ingested: its predicate,
// who signed it, and whether a key of the stage's policy verified it.
type ReviewStatement struct {
	signing.Review
	Fingerprint string `json:"fingerprint,omitempty"`
	// Verified is true when a key that counts under the stage's policy
	// signed it; an unverified statement is shown, and counts for nothing.
	Verified bool `json:"verified"`
}

// ReviewPage is one page of the review queue.
type ReviewPage struct {
	Items []ReviewItem `json:"items"`
	Total int          `json:"total"`
	Page  int          `json:"page"`
}

// reviewPageSize is how many queue items one page holds.
const reviewPageSize = 50

// reviewQueue reads one page of the queue for viewer from query p.
func (a *API) reviewQueue(ctx context.Context, viewer *catalog.Viewer, p url.Values) (*ReviewPage, error) {
	stage, status := p.Get("stage"), p.Get("status")
	if stage != "" && !slices.Contains(StageNames, stage) {
		return nil, &apiError{http.StatusBadRequest, fmt.Sprintf("stage %q: want internal, enterprise or public", stage)}
	}
	if status == "" {
		status = ReviewPending
	}
	if status != ReviewPending && status != ReviewPassed {
		return nil, &apiError{http.StatusBadRequest, fmt.Sprintf("status %q: want pending or passed", status)}
	}
	page := 1
	if v := p.Get("page"); v != "" {
		var err error
		if page, err = strconv.Atoi(v); err != nil || page < 1 || page > maxPage {
			return nil, &apiError{http.StatusBadRequest, fmt.Sprintf("page: %q is not a number from 1 to %d", v, maxPage)}
		}
	}
	vs, err := a.Catalog.Select(ctx, viewer, func(v *store.Version) bool {
		return v.Stage != "" && (stage == "" || v.Stage == stage) && v.Quarantined == (status == ReviewPending)
	})
	if err != nil {
		return nil, err
	}
	// Oldest first, by the store's write order (unique): a queue is worked
	// from its head, and new evidence (a re-ingest) moves a version back.
	slices.SortFunc(vs, func(x, y *store.Version) int { return cmp.Compare(x.Seq, y.Seq) })
	out := &ReviewPage{Items: []ReviewItem{}, Total: len(vs), Page: page}
	from := min((page-1)*reviewPageSize, len(vs))
	for _, h := range vs[from:min(from+reviewPageSize, len(vs))] {
		v, err := a.Store.Version(ctx, h.Tenant, h.Name, h.Version)
		if err != nil {
			return nil, fmt.Errorf("review queue: %s@%s: %w", h.Name, h.Version, err)
		}
		item, err := reviewItem(v)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, item)
	}
	return out, nil
}

// reviewItem reads a whole stored version's decision and evidence.
func reviewItem(v *store.Version) (ReviewItem, error) {
	it := ReviewItem{Tenant: v.Tenant, Name: v.Name, Version: v.Version, Repository: v.Repository, Digest: v.Digest,
		Stage: v.Stage, Quarantined: v.Quarantined, IngestedAt: v.IngestedAt, Failed: []string{}, Reviews: []ReviewStatement{}}
	if len(v.Decision) > 0 {
		var d policy.Decision
		if err := json.Unmarshal(v.Decision, &d); err != nil {
			return it, fmt.Errorf("%s@%s: stored decision: %w", v.Name, v.Version, err)
		}
		it.Failed = append(it.Failed, d.Failed()...)
	} else if v.Quarantined {
		it.Failed = append(it.Failed, "no policy is loaded for stage "+v.Stage+": nothing can pass it")
	}
	if len(v.Evidence) == 0 {
		return it, nil
	}
	var ev struct {
		Signatures   []signing.SignatureResult   `json:"signatures"`
		Attestations []signing.AttestationResult `json:"attestations"`
	}
	if err := json.Unmarshal(v.Evidence, &ev); err != nil {
		return it, fmt.Errorf("%s@%s: stored evidence: %w", v.Name, v.Version, err)
	}
	// A key that signed the artifact is its publisher's: the policy
	// trusts it for the publisher's extensions, so a review it signs
	// verifies too, but a publisher reviewing its own extension (or
	// naming itself the pipeline, to put "approved, no findings" over the
	// pipeline's findings) counts for nothing.
	publisherKeys := map[string]bool{}
	for _, s := range ev.Signatures {
		if s.Verified && s.Fingerprint != "" {
			publisherKeys[s.Fingerprint] = true
		}
	}
	for _, at := range ev.Attestations {
		if at.PredicateType != signing.ReviewV1 || at.Statement == nil {
			continue
		}
		var r signing.Review
		if json.Unmarshal(at.Statement.Predicate, &r) != nil {
			continue // not a review predicate: the decision says so
		}
		st := ReviewStatement{Review: r, Fingerprint: at.Fingerprint, Verified: at.Verified && !publisherKeys[at.Fingerprint]}
		if r.Reviewer == PipelineReviewer {
			// The newest pipeline run counts; a verified one over any
			// unverified one (anyone can attach a statement).
			if p := it.Pipeline; p == nil || st.Verified && !p.Verified || st.Verified == p.Verified && st.Time.After(p.Time) {
				it.Pipeline = &st
			}
			continue
		}
		it.Reviews = append(it.Reviews, st)
	}
	slices.SortStableFunc(it.Reviews, func(x, y ReviewStatement) int { return y.Time.Compare(x.Time) })
	return it, nil
}

// PipelineReviewer is the reviewer name of the automated checks' review
// attestation (mkt review check --attest).
const PipelineReviewer = "pipeline"

// reviews: GET /api/v1/reviews?stage=&status=pending&page=, for tokens with
// the reviewer role.
func (a *API) reviews(w http.ResponseWriter, r *http.Request) {
	viewer, err := a.reviewer(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.reviewQueue(r.Context(), viewer, r.URL.Query())
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// reviewer is the caller when it holds a valid token with the reviewer
// role: 401 without a token, 403 without the role.
func (a *API) reviewer(r *http.Request) (*catalog.Viewer, error) {
	viewer, tok, err := a.viewer(r)
	switch {
	case err != nil:
		return nil, err
	case tok == nil:
		return nil, &apiError{http.StatusUnauthorized, "the review queue needs a token with the reviewer role"}
	case !viewer.Reviewer:
		return nil, &apiError{http.StatusForbidden, "the review queue needs the reviewer role; this token has " + fmt.Sprint(tok.Roles)}
	}
	return viewer, nil
}
