package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connectsoft/marketplace/remote"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
)

// lyingRegistry serves go-containerregistry's registry, but answers a
// GET of the blob named tamper (sha256:<hex>) with other bytes, and
// counts blob GETs.
func lyingRegistry(t *testing.T, tamper *atomic.Value, blobGets *atomic.Int64) (string, *Client) {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			blobGets.Add(1)
			if d, _ := tamper.Load().(string); d != "" && strings.HasSuffix(r.URL.Path, d) {
				body := bytes.Repeat([]byte("X"), 64)
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.Write(body)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "config.json")})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "http://"), c
}

type rawManifest struct{ raw []byte }

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// A signature layer whose blob does not match its descriptor is refused
// (go-containerregistry verifies digest and size), and a descriptor larger
// than COSIGN_MAX_ATTACHMENT_SIZE is refused unread, as cosign does.
func TestHostileLyingRegistryBlobAndSizeHeld(t *testing.T) {
	var tamper atomic.Value
	var gets atomic.Int64
	host, c := lyingRegistry(t, &tamper, &gets)
	ctx := context.Background()
	sv, _ := hostileKey(t)
	subject, _ := name.NewDigest(host+"/r/x@"+hostileDigest, name.Insecure)
	// A payload other than the predicted one, so that it is fetched.
	payload := []byte(`{"critical":{"identity":{"docker-reference":"elsewhere/x"},"image":{"docker-manifest-digest":"` + hostileDigest + `"},"type":"cosign container image signature"},"optional":null}`)
	s := hostileSigLayer(t, sv, payload, nil)
	l := makeLayer(payload, ctypes.SimpleSigningMediaType, s.desc.Annotations[signatureAnnotation], nil)
	tag, _ := cosignTag(subject, sigTagSuffix)
	if err := c.appendToTag(ctx, tag, l, sv); err != nil {
		t.Fatal(err)
	}
	sigs, _, err := c.readSignatures(ctx, tag, subject)
	if err != nil || len(sigs) != 1 || !bytes.Equal(sigs[0].payload, payload) {
		t.Fatalf("baseline: %v %d", err, len(sigs))
	}
	ld, _ := l.layer.Digest()
	tamper.Store(ld.Hex)
	if _, _, err := c.readSignatures(ctx, tag, subject); err == nil {
		t.Error("tampered blob read without error")
	} else {
		t.Logf("tampered blob: %v", err)
	}
	tamper.Store("")

	// A manifest whose layer claims 129 MiB.
	img, _ := ggcrremote.Image(tag, c.remoteOpts(ctx)...)
	m, _ := img.Manifest()
	m.Layers[0].Size = 129 << 20
	raw, _ := json.Marshal(m)
	sum := sha256.Sum256(raw)
	if err := ggcrremote.Put(tag, rawManifest{raw}, c.remoteOpts(ctx)...); err != nil {
		t.Fatal(err)
	}
	_ = sum
	// Skipped unread, as cosign drops it: not evidence, and no error that
	// would hide the other layers of the manifest.
	before := gets.Load()
	if got, _, err := c.readSignatures(ctx, tag, subject); err != nil || len(got) != 0 {
		t.Errorf("129 MiB layer: %d signatures, %v; want it skipped", len(got), err)
	}
	if gets.Load() != before {
		t.Error("oversized layer was fetched")
	}

	// 1001 layers.
	m.Layers[0].Size = int64(len(payload))
	for len(m.Layers) <= maxLayers {
		m.Layers = append(m.Layers, m.Layers[0])
	}
	raw, _ = json.Marshal(m)
	if err := ggcrremote.Put(tag, rawManifest{raw}, c.remoteOpts(ctx)...); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.readSignatures(ctx, tag, subject); err == nil || !strings.Contains(err.Error(), "number of layers") {
		t.Errorf("1001 layers: %v", err)
	}
}

// End to end: a .sig manifest whose one layer has a whitespace certificate
// annotation panics readSignatures (Collect runs it in an errgroup
// goroutine, where the panic ends the process).
func TestHostileWhitespaceCertificateOnRegistryDoesNotPanic(t *testing.T) {
	var tamper atomic.Value
	var gets atomic.Int64
	host, c := lyingRegistry(t, &tamper, &gets)
	ctx := context.Background()
	sv, _ := hostileKey(t)
	subject, _ := name.NewDigest(host+"/r/x@"+hostileDigest, name.Insecure)
	p, _ := simpleSigningPayload(subject)
	s := hostileSigLayer(t, sv, p, nil)
	l := makeLayer(p, ctypes.SimpleSigningMediaType, s.desc.Annotations[signatureAnnotation], map[string]string{certificateAnnotation: "\n"})
	tag, _ := cosignTag(subject, sigTagSuffix)
	if err := c.appendToTag(ctx, tag, l, sv); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("readSignatures panicked on a hostile .sig manifest: %v", r)
		}
	}()
	// Blank is no certificate: the signature stands on its key.
	if got, _, err := c.readSignatures(ctx, tag, subject); err != nil || len(got) != 1 {
		t.Fatalf("a layer whose certificate annotation is blank: %d signatures, %v; want it read", len(got), err)
	}
	// Text that holds no PEM block is no certificate either, but is not
	// blank: the layer is skipped, and the first one still counts.
	l2 := makeLayer(p, ctypes.SimpleSigningMediaType, s.desc.Annotations[signatureAnnotation], map[string]string{certificateAnnotation: "not a certificate"})
	if err := c.appendToTag(ctx, tag, l2, nil); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.readSignatures(ctx, tag, subject); err != nil || len(got) != 1 {
		t.Fatalf("beside a layer whose certificate annotation holds no certificate: %d signatures, %v; want the good one alone", len(got), err)
	}
	_ = v1.Hash{}
}
