package billing

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// Media types of a pushed statement (DESIGN §6.4).
const (
	// StatementArtifactType is the manifest's artifactType and the
	// statement layer's media type.
	StatementArtifactType = "application/vnd.connectsoft.statement.v1+json"
	// StatementSignatureMediaType is the layer holding the statement's
	// signature, base64, as cosign sign-blob --output-signature writes it.
	StatementSignatureMediaType = "application/vnd.connectsoft.statement.signature.v1+base64"
	// StatementFile and SignatureFile are the layers' file names (their
	// org.opencontainers.image.title), what oras pull writes.
	StatementFile = "statement.json"
	SignatureFile = "statement.json.sig"
)

// DefaultGrace is how long after a period ends, and how long before a
// close, the index waits for events still on their way: the cutoff of a
// closed statement is the close's time minus the grace, so an event
// recorded in a transaction that was still committing is not lost between
// the statement and the next period's adjustments.
const DefaultGrace = 5 * time.Minute

// ErrTooEarly refuses closing a period that has not ended (plus the grace).
var ErrTooEarly = errors.New("the period has not ended")

// ErrPreviousOpen refuses closing a period while the one before it is open
// and had usage: its late events would have nowhere to go.
var ErrPreviousOpen = errors.New("the previous period is open")

// CloseStore is what closing needs of the store.
type CloseStore interface {
	CloseStatement(ctx context.Context, c *store.ClosedStatement) error
	ClosedStatements(ctx context.Context, publisher string) ([]*store.ClosedStatement, error)
	SetStatementReference(ctx context.Context, publisher, period, reference string) error
}

// CloseOptions configure Close.
type CloseOptions struct {
	// Signer signs the statement (the operator's key).
	Signer *signing.Signer
	// To is where the statement is pushed: registry/repository, tagged
	// <publisher>-<period>, or registry/repository:tag.
	To string
	// Remote reaches the registry.
	Remote remote.Options
	// Now is the time of the close (default time.Now()).
	Now time.Time
	// Grace (default DefaultGrace): see DefaultGrace.
	Grace time.Duration
}

// ClosedResult says what Close did.
type ClosedResult struct {
	Publisher string `json:"publisher"`
	Period    string `json:"period"`
	// Reference is repository@digest of the pushed artifact.
	Reference string `json:"reference"`
	Tag       string `json:"tag"`
	Signer    string `json:"signer"`
	// Resumed is true when an earlier close had frozen the statement but
	// not pushed it: the frozen statement was pushed now, unchanged.
	Resumed   bool       `json:"resumed,omitempty"`
	Statement *Statement `json:"statement"`
}

// Close freezes publisher's statement of period: it computes it from the
// usage received before the cutoff (now − grace), signs its JSON as
// cosign sign-blob does, stores it (the first of racing replicas wins;
// the others get store.ErrStatementClosed), and pushes it as an OCI
// artifact whose manifest is signed as cosign sign does, so that both
// cosign verify-blob (the statement file) and mkt verify / cosign verify
// (the artifact) accept it. A close that froze the statement and failed
// to push is resumed by closing again; a pushed one is never closed twice.
func (b *Builder) Close(ctx context.Context, st CloseStore, publisher, period string, o CloseOptions) (*ClosedResult, error) {
	if o.Signer == nil {
		return nil, errors.New("close: a signing key is required (--key)")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	from, to, err := ParsePeriod(period)
	if err != nil {
		return nil, err
	}
	repo, tag, err := statementTarget(o.To, publisher, period)
	if err != nil {
		return nil, err
	}
	closed, err := st.ClosedStatements(ctx, publisher)
	if err != nil {
		return nil, err
	}
	for _, c := range closed {
		if c.Period != period {
			continue
		}
		if c.Reference != "" {
			return nil, fmt.Errorf("close %s %s: %w on %s and pushed to %s", publisher, period, store.ErrStatementClosed,
				c.ClosedAt.Format(time.RFC3339), c.Reference)
		}
		// Frozen, never pushed: push what was frozen, byte for byte.
		res, err := push(ctx, st, c, repo, tag, o)
		if res != nil {
			res.Resumed = true
		}
		return res, err
	}
	if end := to.Add(o.Grace); o.Now.Before(end) {
		return nil, fmt.Errorf("close %s %s: %w: it ends at %s; close it after %s, when events still on their way have arrived",
			publisher, period, ErrTooEarly, to.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	prev := PeriodOf(from.Add(-time.Nanosecond))
	if !hasPeriod(closed, prev) && b.hasLines(ctx, publisher, prev, o.Now) {
		return nil, fmt.Errorf("close %s %s: %w: close %s first, so that its late usage has a statement to go to", publisher, period, ErrPreviousOpen, prev)
	}
	cutoff := o.Now.Add(-o.Grace)
	s, err := b.Preview(ctx, publisher, period, cutoff)
	if err != nil {
		return nil, err
	}
	s.Status, s.ClosedAt = StatementClosed, o.Now.UTC()
	body, err := EncodeStatement(s)
	if err != nil {
		return nil, err
	}
	raw, err := o.Signer.SignMessage(bytes.NewReader(body), sigopts.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("close %s %s: sign: %w", publisher, period, err)
	}
	c := &store.ClosedStatement{Publisher: publisher, Period: period, Cutoff: cutoff, ClosedAt: o.Now, Body: body,
		Signature: base64.StdEncoding.EncodeToString(raw), Signer: o.Signer.Fingerprint}
	if err := st.CloseStatement(ctx, c); err != nil {
		return nil, err // store.ErrStatementClosed: another replica closed it first
	}
	return push(ctx, st, c, repo, tag, o)
}

func hasPeriod(cs []*store.ClosedStatement, period string) bool {
	for _, c := range cs {
		if c.Period == period {
			return true
		}
	}
	return false
}

// hasLines reports whether publisher's statement of period (open) has
// any line: usage of its own or adjustments of an earlier one. An error
// counts as lines, so that a close never goes ahead on a failed check.
func (b *Builder) hasLines(ctx context.Context, publisher, period string, now time.Time) bool {
	st, err := b.Preview(ctx, publisher, period, now)
	return err != nil || len(st.Lines) > 0
}

// statementTarget splits --to into the repository and the tag.
func statementTarget(to, publisher, period string) (repo, tag string, err error) {
	if to == "" {
		return "", "", errors.New("close: where to push the statement is required (--to registry/repository)")
	}
	r, err := artifact.ParseReference(to)
	if err != nil {
		return "", "", err
	}
	if strings.HasPrefix(r.Reference, "sha256:") {
		return "", "", fmt.Errorf("close: --to %s names a digest; give a repository (or repository:tag)", to)
	}
	tag = r.Reference
	if tag == "" {
		tag = publisher + "-" + period
	}
	return r.Registry + "/" + r.Repository, tag, nil
}

// push writes the frozen statement and its signature as one artifact,
// tags it, signs its manifest and records where it went.
func push(ctx context.Context, st CloseStore, c *store.ClosedStatement, repoName, tag string, o CloseOptions) (*ClosedResult, error) {
	s, err := DecodeStatement(c.Body)
	if err != nil {
		return nil, err
	}
	repo, err := artifact.NewRepository(repoName, o.Remote)
	if err != nil {
		return nil, err
	}
	layer := func(mediaType, title string, data []byte) (ocispec.Descriptor, error) {
		d := content.NewDescriptorFromBytes(mediaType, data)
		d.Annotations = map[string]string{ocispec.AnnotationTitle: title}
		return d, repo.Push(ctx, d, bytes.NewReader(data))
	}
	body, err := layer(StatementArtifactType, StatementFile, c.Body)
	if err != nil && !isExists(err) {
		return nil, fmt.Errorf("push the statement of %s %s to %s: %w", c.Publisher, c.Period, repoName, err)
	}
	sig, err := layer(StatementSignatureMediaType, SignatureFile, []byte(c.Signature))
	if err != nil && !isExists(err) {
		return nil, fmt.Errorf("push the statement's signature to %s: %w", repoName, err)
	}
	man, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, StatementArtifactType, oras.PackManifestOptions{
		Layers: []ocispec.Descriptor{body, sig},
		ManifestAnnotations: map[string]string{
			ocispec.AnnotationCreated:            c.ClosedAt.UTC().Format(time.RFC3339),
			"io.connectsoft.statement.publisher": c.Publisher,
			"io.connectsoft.statement.period":    c.Period,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("push the statement manifest to %s: %w", repoName, err)
	}
	if err := repo.Tag(ctx, man, tag); err != nil {
		return nil, fmt.Errorf("tag the statement %s:%s: %w", repoName, tag, err)
	}
	ref := repoName + "@" + man.Digest.String()
	sc, err := signing.NewClient(o.Remote)
	if err != nil {
		return nil, err
	}
	if _, err := sc.Sign(ctx, ref, o.Signer, signing.WriteOptions{}); err != nil {
		return nil, fmt.Errorf("sign the statement artifact %s: %w", ref, err)
	}
	if err := st.SetStatementReference(ctx, c.Publisher, c.Period, ref); err != nil {
		return nil, err
	}
	return &ClosedResult{Publisher: c.Publisher, Period: c.Period, Reference: ref, Tag: tag, Signer: c.Signer, Statement: s}, nil
}

func isExists(err error) bool { return errors.Is(err, errdef.ErrAlreadyExists) }
