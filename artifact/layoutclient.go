package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/connectsoft/marketplace/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// LayoutOptions returns registry options under which every registry, by
// any host and repository name, is the OCI image layout at path, read
// only: an air-gapped machine resolves and installs from a layout that
// `mkt copy --to-oci-layout` filled, with the repository names (and so the
// policy's repository rules) of the registry the artifacts came from. Both
// OCI stacks (oras-go for artifacts, go-containerregistry for signatures
// and attestations) read through the same in-process transport, which
// answers the distribution API's reads (manifests and blobs by digest or
// tag, tags, referrers) from the layout and opens no connection. Digests
// name content, so artifacts copied from several repositories share one
// layout; tags are the layout's own (cosign's sha256-<hex>.sig tags are
// per digest, so they do not collide).
func LayoutOptions(path string) (remote.Options, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return remote.Options{}, fmt.Errorf("open OCI layout %s: %w", path, err)
	}
	if !fi.IsDir() {
		return remote.Options{}, fmt.Errorf("open OCI layout %s: not a directory", path)
	}
	store, err := oci.NewFromFS(context.Background(), os.DirFS(path))
	if err != nil {
		return remote.Options{}, fmt.Errorf("open OCI layout %s: %w", path, err)
	}
	t := &layoutTransport{store: store, path: path}
	c := &auth.Client{Client: &http.Client{Transport: t}, Cache: auth.NewCache(),
		Credential: func(context.Context, string) (auth.Credential, error) { return auth.EmptyCredential, nil }}
	c.SetUserAgent(remote.UserAgent)
	return remote.Options{Client: c}, nil
}

// layoutTransport answers registry reads from an OCI layout.
type layoutTransport struct {
	store *oci.ReadOnlyStore
	path  string
}

func (t *layoutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	p := r.URL.Path
	if p == "/v2/" || p == "/v2" {
		return t.answer(r, http.StatusOK, "application/json", nil, []byte("{}")), nil
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return t.errorAnswer(r, http.StatusMethodNotAllowed, "UNSUPPORTED", "the OCI layout "+t.path+" is read only"), nil
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return t.errorAnswer(r, http.StatusNotFound, "NAME_UNKNOWN", "not a registry path"), nil
	}
	for _, kind := range []string{"/manifests/", "/blobs/", "/referrers/"} {
		if i := strings.LastIndex(rest, kind); i > 0 {
			return t.serve(r, strings.Trim(kind, "/"), rest[i+len(kind):])
		}
	}
	if strings.HasSuffix(rest, "/tags/list") {
		return t.tags(r)
	}
	return t.errorAnswer(r, http.StatusNotFound, "NAME_UNKNOWN", "not a registry path"), nil
}

func (t *layoutTransport) serve(r *http.Request, kind, ref string) (*http.Response, error) {
	ctx := r.Context()
	switch kind {
	case "referrers":
		return t.referrers(r, ref)
	case "blobs":
		d, err := digest.Parse(ref)
		if err != nil {
			return t.errorAnswer(r, http.StatusBadRequest, "DIGEST_INVALID", err.Error()), nil
		}
		desc, err := t.store.Resolve(ctx, d.String())
		if err != nil {
			return t.notFound(r, "BLOB_UNKNOWN", err)
		}
		return t.content(r, desc, "application/octet-stream")
	}
	desc, err := t.store.Resolve(ctx, ref)
	if err != nil {
		return t.notFound(r, "MANIFEST_UNKNOWN", err)
	}
	mt := desc.MediaType
	if mt == "" || mt == "application/octet-stream" {
		// A manifest known only as a blob: its own mediaType says.
		b, err := t.read(ctx, desc)
		if err != nil {
			return nil, err
		}
		mt = manifestMediaType(b)
	}
	return t.content(r, desc, mt)
}

// manifestMediaType reads a manifest's own mediaType, or guesses it from
// its fields when it has none (both are allowed by the image spec).
func manifestMediaType(b []byte) string {
	var m struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	_ = json.Unmarshal(b, &m)
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	}
	return ocispec.MediaTypeImageManifest
}

func (t *layoutTransport) read(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	rc, err := t.store.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 4<<20))
}

// content answers desc's bytes, streamed; a Range of "bytes=N-" (a
// resumed download) starts at N.
func (t *layoutTransport) content(r *http.Request, desc ocispec.Descriptor, mediaType string) (*http.Response, error) {
	h := http.Header{}
	h.Set("Content-Type", mediaType)
	h.Set("Docker-Content-Digest", desc.Digest.String())
	if r.Method == http.MethodHead {
		resp := t.answer(r, http.StatusOK, mediaType, h, nil)
		resp.ContentLength = desc.Size
		resp.Header.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
		return resp, nil
	}
	rc, err := t.store.Fetch(r.Context(), desc)
	if err != nil {
		return t.notFound(r, "BLOB_UNKNOWN", err)
	}
	status, size := http.StatusOK, desc.Size
	if rng := r.Header.Get("Range"); strings.HasPrefix(rng, "bytes=") && strings.HasSuffix(rng, "-") {
		from, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-"), 10, 64)
		s, ok := rc.(io.Seeker)
		if err == nil && ok && from >= 0 && from <= desc.Size {
			if _, err := s.Seek(from, io.SeekStart); err == nil {
				status, size = http.StatusPartialContent, desc.Size-from
				h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, desc.Size-1, desc.Size))
			}
		}
	}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: rc, ContentLength: size, Request: r}, nil
}

func (t *layoutTransport) tags(r *http.Request) (*http.Response, error) {
	var all []string
	if err := t.store.Tags(r.Context(), "", func(tags []string) error { all = append(all, tags...); return nil }); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]any{"name": "oci-layout", "tags": all})
	return t.answer(r, http.StatusOK, "application/json", nil, b), nil
}

// referrers answers the OCI referrers API: the manifests whose subject is
// the digest, each described with its artifactType.
func (t *layoutTransport) referrers(r *http.Request, ref string) (*http.Response, error) {
	ctx := r.Context()
	d, err := digest.Parse(ref)
	if err != nil {
		return t.errorAnswer(r, http.StatusBadRequest, "DIGEST_INVALID", err.Error()), nil
	}
	subject, err := t.store.Resolve(ctx, d.String())
	if err != nil {
		subject = ocispec.Descriptor{Digest: d}
	}
	preds, err := t.store.Predecessors(ctx, subject)
	if err != nil {
		return nil, err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, p := range preds {
		b, err := t.read(ctx, p)
		if err != nil {
			return nil, err
		}
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) != nil || m.Subject == nil || m.Subject.Digest != d {
			continue // an index that lists it, not a referrer
		}
		at := m.ArtifactType
		if at == "" {
			at = m.Config.MediaType
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: manifestMediaType(b), Digest: p.Digest,
			Size: p.Size, ArtifactType: at, Annotations: m.Annotations})
	}
	b, _ := json.Marshal(idx)
	return t.answer(r, http.StatusOK, ocispec.MediaTypeImageIndex, nil, b), nil
}

func (t *layoutTransport) notFound(r *http.Request, code string, err error) (*http.Response, error) {
	if errors.Is(err, errdef.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return t.errorAnswer(r, http.StatusNotFound, code, "not in the OCI layout "+t.path), nil
	}
	return nil, err
}

func (t *layoutTransport) errorAnswer(r *http.Request, status int, code, msg string) *http.Response {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	return t.answer(r, status, "application/json", nil, b)
}

func (t *layoutTransport) answer(r *http.Request, status int, mediaType string, h http.Header, body []byte) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", mediaType)
	if status == http.StatusOK && r.URL.Path == "/v2/" {
		h.Set("Docker-Distribution-API-Version", "registry/2.0")
	}
	if r.Method == http.MethodHead {
		body = nil
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(string(body))), ContentLength: int64(len(body)), Request: r}
}
