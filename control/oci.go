package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// SequenceAnnotation on the pushed manifest repeats the list's sequence,
// for people looking at the registry; the signed layer is what counts.
const SequenceAnnotation = "io.connectsoft.marketplace.controllist.sequence"

// Pushed says where a list went.
type Pushed struct {
	Reference   string `json:"reference"`
	Digest      string `json:"digest"`
	Sequence    int64  `json:"sequence"`
	Entries     int    `json:"entries"`
	Expires     string `json:"expires"`
	Fingerprint string `json:"fingerprint"`
}

// Push writes l to ref (host/repo:tag) as an OCI artifact of type
// ArtifactType, with the list as canonical JSON in its one layer, and signs
// the manifest with s as `cosign sign --key` does. A list whose sequence is
// not above the one ref already holds is refused before anything is
// written: consumers would refuse it as a rollback.
func Push(ctx context.Context, l *List, ref string, s *signing.Signer, ro remote.Options) (*Pushed, error) {
	r, err := artifact.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if r.Reference == "" || r.ValidateReferenceAsDigest() == nil {
		return nil, fmt.Errorf("control push %s: name a tag (e.g. %s/%s:latest) that consumers' policies follow", ref, r.Registry, r.Repository)
	}
	if !l.Expires.After(time.Now()) {
		return nil, fmt.Errorf("control push: the list expired at %s: set expires in the future", l.Expires.Format(time.RFC3339))
	}
	ro, err = ro.Shared()
	if err != nil {
		return nil, err
	}
	repo, err := artifact.NewRepository(ref, ro)
	if err != nil {
		return nil, err
	}
	if cur, err := fetchUnverified(ctx, repo, r.Reference); err == nil && cur.list.Sequence >= l.Sequence {
		return nil, fmt.Errorf("control push %s: sequence %d is not above the %d already there: consumers would refuse it as a rollback; raise sequence", ref, l.Sequence, cur.list.Sequence)
	} else if err != nil && !artifact.IsNotFound(err) && !errors.Is(err, errNotControlList) {
		return nil, fmt.Errorf("control push %s: read the list there now: %w", ref, err)
	}
	body, err := l.Canonical()
	if err != nil {
		return nil, err
	}
	layer := content.NewDescriptorFromBytes(MediaType, body)
	if err := pushIfAbsent(ctx, repo, layer, body); err != nil {
		return nil, fmt.Errorf("control push %s: %w", ref, err)
	}
	if err := pushIfAbsent(ctx, repo, ocispec.DescriptorEmptyJSON, ocispec.DescriptorEmptyJSON.Data); err != nil {
		return nil, fmt.Errorf("control push %s: %w", ref, err)
	}
	man, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{SequenceAnnotation: strconv.FormatInt(l.Sequence, 10), ocispec.AnnotationCreated: time.Unix(0, 0).UTC().Format(time.RFC3339)},
	})
	if err != nil {
		return nil, fmt.Errorf("control push %s: %w", ref, err)
	}
	if err := repo.Tag(ctx, man, r.Reference); err != nil {
		return nil, fmt.Errorf("control push %s: tag: %w", ref, err)
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	at := r.Registry + "/" + r.Repository + "@" + man.Digest.String()
	if _, err := sc.Sign(ctx, at, s, signing.WriteOptions{}); err != nil {
		return nil, fmt.Errorf("control push %s: %w", ref, err)
	}
	return &Pushed{Reference: at, Digest: man.Digest.String(), Sequence: l.Sequence, Entries: len(l.Entries),
		Expires: l.Expires.UTC().Format(time.RFC3339), Fingerprint: s.Fingerprint}, nil
}

func pushIfAbsent(ctx context.Context, repo oras.Target, d ocispec.Descriptor, body []byte) error {
	ok, err := repo.Exists(ctx, d)
	if err != nil || ok {
		return err
	}
	return repo.Push(ctx, d, bytes.NewReader(body))
}

var errNotControlList = errors.New("not a control list")

// fetched is a list read from a registry and the bytes it was read from.
type fetched struct {
	list   *List
	digest string
	raw    []byte
}

// fetchUnverified reads the list at reference on repo: its manifest
// (artifactType checked) and its layer (digest checked), parsed. The
// signature is not checked here.
func fetchUnverified(ctx context.Context, repo oras.ReadOnlyTarget, reference string) (*fetched, error) {
	desc, raw, err := oras.FetchBytes(ctx, repo, reference, oras.FetchBytesOptions{MaxBytes: 4 << 20})
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", errNotControlList, err)
	}
	if m.ArtifactType != ArtifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != MediaType {
		return nil, fmt.Errorf("%w: artifactType %q with %d layers, want %s with one %s layer", errNotControlList, m.ArtifactType, len(m.Layers), ArtifactType, MediaType)
	}
	layer := m.Layers[0]
	if layer.Size > maxListSize {
		return nil, fmt.Errorf("control list layer of %d bytes, over the %d-byte limit", layer.Size, maxListSize)
	}
	rc, err := repo.Fetch(ctx, layer)
	if err != nil {
		return nil, fmt.Errorf("fetch control list layer %s: %w", layer.Digest, err)
	}
	defer rc.Close()
	body, err := content.ReadAll(rc, layer)
	if err != nil {
		return nil, fmt.Errorf("read control list layer %s: %w", layer.Digest, err)
	}
	l, err := Parse(body, "control list "+desc.Digest.String())
	if err != nil {
		return nil, err
	}
	return &fetched{list: l, digest: desc.Digest.String(), raw: body}, nil
}

// Fetched is a list read from a registry whose signature verified.
type Fetched struct {
	List *List `json:"list"`
	// Reference is repository@digest of the list's manifest.
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Signers are the fingerprints of the keys that verified it.
	Signers []string `json:"signers"`
	raw     []byte
}

// ErrUnsigned says no trusted key signed a list.
var ErrUnsigned = errors.New("control list not signed by a trusted key")

// Fetch reads the list ref names and checks that one of keys signed its
// manifest (cosign's .sig tag or a referrer). With no keys the signature
// is not checked and Signers is empty: for `mkt control show` without
// --key only.
func Fetch(ctx context.Context, ref string, keys []*signing.Key, ro remote.Options) (*Fetched, error) {
	r, err := artifact.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	ro, err = ro.Shared()
	if err != nil {
		return nil, err
	}
	repo, err := artifact.NewRepository(ref, ro)
	if err != nil {
		return nil, err
	}
	reference := r.Reference
	if reference == "" {
		reference = "latest"
	}
	f, err := fetchUnverified(ctx, repo, reference)
	if err != nil {
		return nil, fmt.Errorf("fetch control list %s: %w", ref, err)
	}
	out := &Fetched{List: f.list, Reference: r.Registry + "/" + r.Repository + "@" + f.digest, Digest: f.digest, raw: f.raw}
	if len(keys) == 0 {
		return out, nil
	}
	sc, err := signing.NewClient(ro)
	if err != nil {
		return nil, err
	}
	res, err := sc.Verify(ctx, out.Reference, signing.VerifyOptions{Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("control list %s: %w", ref, err)
	}
	var why []string
	for _, s := range res.Signatures {
		if s.Verified {
			out.Signers = append(out.Signers, s.Fingerprint)
		} else if s.Error != "" {
			why = append(why, s.Error)
		}
	}
	if len(out.Signers) == 0 {
		detail := "no signature found"
		if len(why) > 0 {
			detail = fmt.Sprintf("%d signature(s), none by the policy's control-list keys: %v", len(res.Signatures), why)
		}
		return nil, fmt.Errorf("control list %s (%s): %w (%s)", ref, f.digest, ErrUnsigned, detail)
	}
	return out, nil
}

// EntryFor builds a block entry for the extension ref names: its manifest,
// layer and content digests (the content read and hashed as it streams)
// and its name, so that the same files are refused under any name, by any
// publisher. `mkt control add` appends it to a list.
func EntryFor(ctx context.Context, ref string, ro remote.Options, action, reason string, now time.Time) (*Entry, error) {
	ro, err := ro.Shared()
	if err != nil {
		return nil, err
	}
	repo, err := artifact.NewRepository(ref, ro)
	if err != nil {
		return nil, err
	}
	a, err := artifact.Fetch(ctx, repo, repo.Reference.Reference)
	if err != nil {
		return nil, err
	}
	cd, err := artifact.ContentDigestOf(ctx, repo, a, artifact.Limits{})
	if err != nil {
		return nil, err
	}
	e := &Entry{Digest: a.Descriptor.Digest.String(), LayerDigest: a.Layer().Digest.String(), ContentDigest: cd,
		Name: a.Extension.Metadata.Name, Versions: []string{a.Extension.Metadata.Version},
		Action: action, Reason: reason, Time: now.UTC().Truncate(time.Second)}
	var problems []string
	e.check("entry", func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	})
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %v", ErrInvalidList, problems)
	}
	return e, nil
}
