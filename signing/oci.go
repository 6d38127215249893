package signing

// cosign's storage formats, read and written with go-containerregistry.
//
// cosign's own packages for this (pkg/oci/..., pkg/cosign/remote) link its
// transparency-log client (rekor, go-openapi, gRPC, html/template), which
// cost every mkt command milliseconds of package initialisation and put
// html/template into the Go API. What they do for key-based signing is
// small and is done here step for step, with the same go-containerregistry
// calls, so the manifests are byte for byte what cosign writes: the
// functions named in the comments are cosign v2.6.5's.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/dustin/go-humanize"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Layer annotations cosign writes and reads (pkg/oci/static).
const (
	signatureAnnotation   = "dev.cosignproject.cosign/signature"
	certificateAnnotation = "dev.sigstore.cosign/certificate"
	chainAnnotation       = "dev.sigstore.cosign/chain"
	bundleAnnotation      = "dev.sigstore.cosign/bundle"
	timestampAnnotation   = "dev.sigstore.cosign/rfc3161timestamp"
)

// Tag suffixes of cosign's signature and attestation manifests.
const (
	sigTagSuffix = "sig"
	attTagSuffix = "att"
)

// maxLayers is the most layers cosign reads from one signature manifest.
const maxLayers = 1000

// maxAttachmentSizeEnv overrides the largest layer cosign reads (128 MiB),
// as cosign's COSIGN_MAX_ATTACHMENT_SIZE does.
const (
	maxAttachmentSizeEnv     = "COSIGN_MAX_ATTACHMENT_SIZE"
	defaultMaxAttachmentSize = uint64(128 << 20)
)

// cosignTag is where cosign stores the signatures (suffix "sig") or
// attestations ("att") of d: sha256-<hex>.<suffix> in d's repository.
func cosignTag(d name.Digest, suffix string) (name.Tag, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return name.Tag{}, err
	}
	return d.Repository.Tag(h.Algorithm + "-" + h.Hex + "." + suffix), nil
}

// sigLayer is one layer of a signature or attestation manifest with its
// payload read, as cosign's static.Copy holds it.
type sigLayer struct {
	desc    v1.Descriptor
	payload []byte
	// cert is the layer's certificate annotation, parsed; nil without one.
	cert *x509.Certificate
}

func (s *sigLayer) mediaType() string { return string(s.desc.MediaType) }

// readLayer reads what cosign's static.Copy reads of a layer whose payload
// is known, and fails where it fails: on a certificate, chain, bundle or
// timestamp annotation that does not parse.
func readLayer(desc v1.Descriptor, payload []byte) (sigLayer, error) {
	s := sigLayer{desc: desc, payload: payload}
	ann := desc.Annotations
	if v := ann[bundleAnnotation]; v != "" {
		var b struct {
			SignedEntryTimestamp []byte
			Payload              struct {
				Body           any    `json:"body"`
				IntegratedTime int64  `json:"integratedTime"`
				LogIndex       int64  `json:"logIndex"`
				LogID          string `json:"logID"`
			}
		}
		if err := json.Unmarshal([]byte(v), &b); err != nil {
			return s, fmt.Errorf("unmarshaling bundle: %w", err)
		}
	}
	if v := ann[timestampAnnotation]; v != "" {
		var ts struct{ SignedRFC3161Timestamp []byte }
		if err := json.Unmarshal([]byte(v), &ts); err != nil {
			return s, fmt.Errorf("unmarshaling RFC3161 timestamp bundle: %w", err)
		}
	}
	if v := strings.TrimSpace(ann[certificateAnnotation]); v != "" {
		certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(v))
		if err != nil {
			return s, err
		}
		if len(certs) == 0 { // text that is no PEM at all: indexing it panicked
			return s, errors.New("certificate annotation holds no certificate")
		}
		s.cert = certs[0]
		if v := ann[chainAnnotation]; v != "" {
			if _, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(v)); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// readSignatures reads every layer of the signature or attestation
// manifest ref names into memory (they are small), so that checking them
// against several keys fetches nothing twice, and returns the manifest's
// digest. A missing manifest means none (and digest ""). This is what
// cosign's remote.Signatures and static.Copy read.
//
// A simple-signing layer whose digest is that of the payload `cosign sign`
// and Sign write for subject is not read: a digest names fixed content, so
// that payload is the layer. Every signed version's ingest saves a blob
// read so; a payload written otherwise (another registry name, annotations)
// is read as before.
func (c *Client) readSignatures(ctx context.Context, ref name.Reference, subject name.Digest) ([]sigLayer, string, error) {
	img, err := ggcrremote.Image(ref, c.remoteOpts(ctx)...)
	if isNotFound(err) {
		return nil, "", nil
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return nil, "", terr
	}
	if err != nil {
		return nil, "", err
	}
	h, err := img.Digest()
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if h == emptySignaturesDigest() { // what cosign took for a 404
		return nil, "", nil
	}
	m, err := img.Manifest()
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if n := len(m.Layers); n > maxLayers {
		return nil, "", fmt.Errorf("number of layers (%d) exceeded the limit (%d)", n, maxLayers)
	}
	out := make([]sigLayer, 0, len(m.Layers))
	for _, desc := range m.Layers {
		// A layer without cosign's signature annotation, or with a
		// malformed certificate, bundle or timestamp annotation, or larger
		// than cosign reads, can never verify: it is not evidence either
		// way, and is skipped as cosign drops it, so that one bad layer
		// pushed beside them does not hide the good ones. A blob that
		// cannot be read is a registry fault and is reported as one.
		if !hasKey(desc.Annotations, signatureAnnotation) || checkAttachmentSize(desc.Size) != nil {
			continue
		}
		if _, err := readLayer(desc, nil); err != nil {
			continue
		}
		payload := predictedPayload(desc, subject)
		if payload == nil {
			if payload, err = readPayload(img, desc); err != nil {
				return nil, "", fmt.Errorf("read %s: %w", ref, err)
			}
		}
		s, err := readLayer(desc, payload)
		if err != nil {
			continue
		}
		out = append(out, s)
	}
	return out, h.String(), nil
}

// readPayload reads a layer's blob, verified against its digest and size,
// refusing one larger than cosign would read.
func readPayload(img v1.Image, desc v1.Descriptor) ([]byte, error) {
	if err := checkAttachmentSize(desc.Size); err != nil {
		return nil, err
	}
	l, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return nil, err
	}
	r, err := l.Compressed() // the bytes as stored
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// checkAttachmentSize is cosign's payload size check.
func checkAttachmentSize(size int64) error {
	limit := defaultMaxAttachmentSize
	if v, ok := os.LookupEnv(maxAttachmentSizeEnv); ok {
		if n, err := humanize.ParseBytes(v); err == nil {
			limit = n
		}
	}
	if size < 0 || uint64(size) > limit {
		return fmt.Errorf("size of layer (%d) exceeded the limit (%d)", size, limit)
	}
	return nil
}

// predictedPayload returns the simple-signing payload for subject that
// Sign and `cosign sign` write when the layer desc describes is exactly
// it, else nil.
func predictedPayload(desc v1.Descriptor, subject name.Digest) []byte {
	if string(desc.MediaType) != ctypes.SimpleSigningMediaType {
		return nil
	}
	p, err := simpleSigningPayload(subject)
	if err != nil || int64(len(p)) != desc.Size {
		return nil
	}
	if sum := sha256.Sum256(p); desc.Digest.Algorithm != "sha256" || desc.Digest.Hex != hex.EncodeToString(sum[:]) {
		return nil
	}
	return p
}

// dockerMediaTypes is cosign's COSIGN_DOCKER_MEDIA_TYPES: signature
// manifests with Docker's media types instead of OCI's.
func dockerMediaTypes() bool {
	b, err := strconv.ParseBool(os.Getenv("COSIGN_DOCKER_MEDIA_TYPES"))
	return err == nil && b
}

// emptySignatures is the image a first signature or attestation is
// appended to (cosign's empty.Signatures).
func emptySignatures() v1.Image {
	base := empty.Image
	if !dockerMediaTypes() {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	return base
}

// emptySignaturesDigest is the digest of emptySignatures(), which cosign's
// remote.Signatures returned for a missing manifest instead of an error.
var emptySignaturesDigest = sync.OnceValue(func() v1.Hash {
	h, _ := emptySignatures().Digest()
	return h
})

// newLayer is a signature or attestation about to be written: its payload
// as a layer and the layer's annotations (cosign's static.NewSignature and
// static.NewAttestation, which give an attestation an empty signature
// annotation).
type newLayer struct {
	layer       v1.Layer
	payload     []byte
	annotations map[string]string
}

func makeLayer(payload []byte, mediaType string, b64sig string, annotations map[string]string) newLayer {
	ann := make(map[string]string, len(annotations)+1)
	for k, v := range annotations {
		ann[k] = v
	}
	ann[signatureAnnotation] = b64sig
	return newLayer{layer: static.NewLayer(payload, types.MediaType(mediaType)), payload: payload, annotations: ann}
}

// appendTo is cosign's mutate.AppendSignatures without a creation time.
func appendTo(base v1.Image, l newLayer) (v1.Image, error) {
	return mutate.Append(base, mutate.Addendum{Layer: l.layer, Annotations: l.annotations})
}

// appendToTag adds l to the manifest under tag, as `cosign sign` and
// `cosign attest` do: the manifest is read (none: an empty one), l is
// appended unless the verifier's dupe check finds it there already, and
// the result is written back to the tag.
func (c *Client) appendToTag(ctx context.Context, tag name.Tag, l newLayer, v signature.Verifier) error {
	ro := c.remoteOpts(ctx)
	base, err := ggcrremote.Image(tag, ro...)
	var terr *transport.Error
	switch {
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		base = emptySignatures()
	case errors.As(err, &terr):
		return terr
	case err != nil:
		return err
	}
	img := base
	dup, err := isDuplicate(base, l, v)
	if err != nil {
		return err
	}
	if !dup {
		if img, err = appendTo(base, l); err != nil {
			return err
		}
	}
	return ggcrremote.Write(tag, img, ro...)
}

// isDuplicate is cosign's dupe detector (pkg/cosign/remote): a layer of
// base with l's digest and media type, every annotation of l but the
// signature, and a signature that v verifies over l's payload. Attestation
// layers, whose signature annotation is empty, are never duplicates.
func isDuplicate(base v1.Image, l newLayer, v signature.Verifier) (bool, error) {
	newDigest, err := l.layer.Digest()
	if err != nil {
		return false, err
	}
	newMediaType, err := l.layer.MediaType()
	if err != nil {
		return false, err
	}
	m, err := base.Manifest()
	if err != nil {
		return false, err
	}
	if n := len(m.Layers); n > maxLayers {
		return false, fmt.Errorf("number of layers (%d) exceeded the limit (%d)", n, maxLayers)
	}
layers:
	for _, desc := range m.Layers {
		for k, val := range l.annotations {
			if k == signatureAnnotation {
				continue
			}
			if have, ok := desc.Annotations[k]; !ok || have != val {
				continue layers
			}
		}
		if desc.Digest != newDigest || desc.MediaType != newMediaType {
			continue
		}
		b64 := desc.Annotations[signatureAnnotation]
		if b64 == "" {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(l.payload)) == nil {
			return true, nil
		}
	}
	return false, nil
}

// referrerManifest is the manifest cosign writes as a signature referrer:
// an OCI manifest with an artifactType.
type referrerManifest struct {
	v1.Manifest
	ArtifactType string `json:"artifactType,omitempty"`
}

func (r referrerManifest) RawManifest() ([]byte, error) { return json.Marshal(r) }

func (r referrerManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}

// writeSignatureReferrer stores l as an OCI 1.1 referrer of d, as cosign's
// WriteSignaturesExperimentalOCI does (`cosign sign --registry-referrers-mode
// oci-1-1`): the image of that one signature, its config media type and
// artifactType naming cosign's signature artifact, its subject d.
func (c *Client) writeSignatureReferrer(ctx context.Context, d name.Digest, l newLayer) error {
	ro := c.remoteOpts(ctx)
	subject, err := ggcrremote.Head(d, ro...)
	if err != nil {
		return err
	}
	img, err := appendTo(emptySignatures(), l)
	if err != nil {
		return err
	}
	if err := ggcrremote.WriteLayer(d.Repository, l.layer, ro...); err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	var configDesc v1.Descriptor // cosign reads the media type so, finding none
	if err := json.Unmarshal(config, &configDesc); err != nil {
		return err
	}
	if err := ggcrremote.WriteLayer(d.Repository, static.NewLayer(config, configDesc.MediaType), ro...); err != nil {
		return err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	m.Config.MediaType = sigArtifactType
	m.Subject = subject
	rm := referrerManifest{m, sigArtifactType}
	raw, err = rm.RawManifest()
	if err != nil {
		return err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return ggcrremote.Put(d.Repository.Digest(h.String()), rm, ro...)
}

// writeAttestationReferrer stores l as an OCI 1.1 referrer of d: the
// image of that one attestation, with the subject set and the config media
// type naming it, as cosign's WriteSignaturesExperimentalOCI does for
// signatures. (cosign's own WriteAttestationsReferrer drops the layer
// annotations, including the signature annotation its reader requires.)
func (c *Client) writeAttestationReferrer(ctx context.Context, d name.Digest, l newLayer) error {
	ro := c.remoteOpts(ctx)
	subject, err := ggcrremote.Head(d, ro...)
	if err != nil {
		return fmt.Errorf("head %s: %w", d, err)
	}
	img, err := appendTo(emptySignatures(), l)
	if err != nil {
		return err
	}
	img = mutate.ConfigMediaType(img, attArtifactType)
	img = mutate.Subject(img, *subject).(v1.Image)
	h, err := img.Digest()
	if err != nil {
		return err
	}
	return ggcrremote.Write(d.Repository.Digest(h.String()), img, ro...)
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return err != nil && errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }
