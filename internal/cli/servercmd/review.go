package servercmd

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/connectsoft/marketplace/internal/cli/serverapi"
	"github.com/connectsoft/marketplace/review"
	"github.com/connectsoft/marketplace/signing"
)

// ReviewCheck runs the review pipeline on a directory or a reference and,
// with a signer, attests the result.
func (Commands) ReviewCheck(ctx context.Context, env serverapi.Env, f serverapi.ReviewOptions) (serverapi.Result, error) {
	o := review.Options{
		Stage: f.Stage, Policy: f.Policy, OSVDir: f.OSVDir, FactoryVersion: f.FactoryVersion, Resolve: f.Resolve,
		Limits: review.Limits{MaxFiles: f.MaxFiles, MaxTotalSize: f.MaxSize, MaxFileSize: f.MaxFileSize},
		Remote: env.Remote,
	}
	if f.BlockAt != "" {
		sev, err := review.ParseSeverity(f.BlockAt)
		if err != nil {
			return nil, serverapi.UsageError{Err: fmt.Errorf("--block-at: %w", err)}
		}
		o.BlockAt = sev
	}
	var rep *review.Report
	var err error
	if st, serr := os.Stat(f.Target); serr == nil && st.IsDir() {
		if f.Signer != nil {
			return nil, serverapi.UsageError{Err: fmt.Errorf("--attest signs a pushed artifact: push %s, then check its reference", f.Target)}
		}
		rep, err = review.CheckDir(ctx, f.Target, o)
	} else {
		rep, err = review.CheckRef(ctx, f.Target, o)
	}
	if err != nil {
		return nil, err
	}
	res := &ReviewResult{rep}
	if f.Signer != nil {
		if err := review.Attest(ctx, f.Client, f.Signer, rep, signing.WriteOptions{Referrers: f.Referrers}); err != nil {
			return res, err
		}
	}
	if !rep.Approved() {
		return res, fmt.Errorf("%s: %w: %d blocking finding(s) at %s or above", f.Target, serverapi.ErrRejected, rep.Blocking, rep.BlockAt)
	}
	return res, nil
}

// ReviewResult is the pipeline's report: {"target":…,"result":…,"checks":[…]}.
type ReviewResult struct{ *review.Report }

// PrintText writes the report, and what was attested on stderr.
func (r *ReviewResult) PrintText(stdout, stderr io.Writer) {
	r.WriteText(stdout)
	for _, a := range r.Attestations {
		fmt.Fprintf(stderr, "attested %s on %s with key %s\n", signing.ShortName(a.PredicateType), a.Reference, a.Fingerprint)
	}
}
