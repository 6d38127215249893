package artifact_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
)

// relatedKinds summarises FindRelated as sorted "tag:<suffix>" and
// "referrer:<artifactType>" strings.
func relatedKinds(t testing.TB, src oras.ReadOnlyTarget, subject ocispec.Descriptor) []string {
	t.Helper()
	rel, err := artifact.FindRelated(context.Background(), src, subject)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rel {
		if r.Tag != "" {
			out = append(out, "tag:"+filepath.Ext(r.Tag))
		} else {
			out = append(out, "referrer:"+r.Descriptor.ArtifactType)
		}
	}
	sort.Strings(out)
	return out
}

func TestCopyCarriesSignaturesAndReferrersThroughRegistriesAndLayouts(t *testing.T) {
	ctx := context.Background()
	src := sampleWithBlob(t, 64<<10)
	pkg := pack(t, src)
	repoA := uniqueRepo(t) + "-a"
	a := openRepo(t, distPlain, repoA)
	if _, err := artifact.Push(ctx, a, "1.0.0", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	// A cosign-style signature tag and an OCI referrer, made by stock oras.
	oras := stockOras(t)
	oras.Dir = t.TempDir()
	os.WriteFile(filepath.Join(oras.Dir, "payload.json"), []byte(`{"critical":{"image":{"docker-manifest-digest":"`+pkg.Manifest.Digest.String()+`"}}}`), 0o644)
	os.WriteFile(filepath.Join(oras.Dir, "sbom.json"), []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644)
	sigTag := artifact.CosignTag(pkg.Manifest.Digest, artifact.SignatureTagSuffix)
	if _, err := oras.Run(ctx, "push", "--plain-http", distPlain.Ref(repoA+":"+sigTag), "payload.json:application/vnd.dev.cosign.simplesigning.v1+json"); err != nil {
		t.Fatal(err)
	}
	if _, err := oras.Run(ctx, "attach", "--plain-http", "--artifact-type", "application/spdx+json", distPlain.Ref(repoA+"@"+pkg.Manifest.Digest.String()), "sbom.json"); err != nil {
		t.Fatal(err)
	}
	want := []string{"referrer:application/spdx+json", "tag:.sig"}
	if got := relatedKinds(t, a, pkg.Manifest); !slices.Equal(got, want) {
		t.Fatalf("source has %v, want %v", got, want)
	}

	// distribution → ggcr (referrers API)
	b := openRepo(t, ggcrReg, uniqueRepo(t)+"-b")
	res, err := artifact.Copy(ctx, a, "1.0.0", b, "1.0.0", artifact.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Digest != pkg.Manifest.Digest || len(res.Related) != 2 {
		t.Fatalf("copy result %+v", res)
	}
	if got := relatedKinds(t, b, pkg.Manifest); !slices.Equal(got, want) {
		t.Fatalf("ggcr copy has %v, want %v", got, want)
	}

	// ggcr → OCI layout → distribution with TLS and auth (air-gapped transfer)
	layout, err := oci.New(filepath.Join(t.TempDir(), "layout"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Copy(ctx, b, "1.0.0", layout, "1.0.0", artifact.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := relatedKinds(t, layout, pkg.Manifest); !slices.Equal(got, want) {
		t.Fatalf("layout has %v, want %v", got, want)
	}
	c := openRepo(t, distAuth, uniqueRepo(t)+"-c")
	if _, err := artifact.Copy(ctx, layout, "1.0.0", c, "1.0.0", artifact.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := relatedKinds(t, c, pkg.Manifest); !slices.Equal(got, want) {
		t.Fatalf("final copy has %v, want %v", got, want)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := artifact.Pull(ctx, c, "1.0.0", out, artifact.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)

	// SkipRelated copies the artifact alone.
	d := openRepo(t, ggcrReg, uniqueRepo(t)+"-d")
	if _, err := artifact.Copy(ctx, a, "1.0.0", d, "1.0.0", artifact.CopyOptions{SkipRelated: true}); err != nil {
		t.Fatal(err)
	}
	if got := relatedKinds(t, d, pkg.Manifest); len(got) != 0 {
		t.Fatalf("SkipRelated copied %v", got)
	}
}
