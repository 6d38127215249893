package artifact_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	orasremote "oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// One set of registries serves the whole package: a plain distribution, a
// distribution with TLS and basic auth, the go-containerregistry registry
// (with the referrers API) and a fault proxy in front of the plain one.
var (
	distPlain *testenv.Registry
	distAuth  *testenv.Registry
	ggcrReg   *testenv.Registry
	proxy     *testenv.FaultProxy
	authConf  string // docker config.json with distAuth's credentials
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		must := func(e error) {
			if e != nil {
				fmt.Fprintln(os.Stderr, "testenv:", e)
				os.Exit(1)
			}
		}
		distPlain, err = testenv.StartDistribution(testenv.DistributionOptions{})
		must(err)
		defer distPlain.Close()
		distAuth, err = testenv.StartDistribution(testenv.DistributionOptions{TLS: true, Username: "publisher", Password: "s3cret-pw"})
		must(err)
		defer distAuth.Close()
		ggcrReg, err = testenv.StartGGCR()
		must(err)
		defer ggcrReg.Close()
		proxy, err = testenv.StartFaultProxy(distPlain.Host)
		must(err)
		defer proxy.Close()
		dir, err := os.MkdirTemp("", "mkt-dockerconfig-*")
		must(err)
		defer os.RemoveAll(dir)
		authConf, err = distAuth.DockerConfig(dir)
		must(err)
		return m.Run()
	}())
}

// registries are the targets every push/pull test runs on.
func registries() []*testenv.Registry { return []*testenv.Registry{distPlain, distAuth, ggcrReg} }

func remoteOptions(reg *testenv.Registry) remote.Options {
	o := remote.Options{PlainHTTP: reg.PlainHTTP, CAFile: reg.CAFile}
	if reg.Username != "" {
		o.RegistryConfig = authConf
	} else {
		o.RegistryConfig = filepath.Join(os.TempDir(), "mkt-test-no-config.json")
	}
	return o
}

func openRepo(t testing.TB, reg *testenv.Registry, repo string) *orasremote.Repository {
	t.Helper()
	r, err := artifact.NewRepository(reg.Ref(repo), remoteOptions(reg))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var repoSeq atomic.Int64

// uniqueRepo names a repository no other test, and no other run of this
// one (-count), uses.
func uniqueRepo(t testing.TB) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	return fmt.Sprintf("test/%s-%d", strings.Trim(name, "-"), repoSeq.Add(1))
}

// sampleWithBlob is sampleFiles plus n random bytes, so transfers take
// more than one read and faults can cut them mid-way.
func sampleWithBlob(t testing.TB, n int) string {
	dir := t.TempDir()
	files := sampleFiles()
	blob := make([]byte, n)
	rand.Read(blob)
	files["data/random.bin"] = string(blob)
	writeTree(t, dir, keys(files), files)
	return dir
}

// sameTree fails unless got holds exactly the packed files of want, with
// the same contents and exec bits.
func sameTree(t testing.TB, want, got string) {
	t.Helper()
	if w, g := listTree(t, want), listTree(t, got); w != g {
		t.Fatalf("trees differ:\nwant %s\ngot  %s", w, g)
	}
	filepath.WalkDir(want, func(p string, d fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			t.Fatal(walkErr)
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(want, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: content differs (%v)", rel, err)
		}
		ia, _ := d.Info()
		ib, _ := os.Stat(filepath.Join(got, rel))
		if ia.Mode()&0o111 != 0 != (ib.Mode()&0o111 != 0) {
			t.Errorf("%s: exec bit %v, want %v", rel, ib.Mode(), ia.Mode())
		}
		return nil
	})
}

func TestPushPullRoundTripOnEveryRegistry(t *testing.T) {
	src := sampleWithBlob(t, 300<<10)
	for _, reg := range registries() {
		t.Run(reg.Name+map[bool]string{true: "-plain", false: "-tls-auth"}[reg.PlainHTTP], func(t *testing.T) {
			ctx := context.Background()
			pkg := pack(t, src)
			repo := openRepo(t, reg, uniqueRepo(t))
			res, err := artifact.Push(ctx, repo, "1.0.0", pkg, artifact.PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Unchanged || res.Manifest.Digest != pkg.Manifest.Digest {
				t.Fatalf("push result %+v", res)
			}
			out := filepath.Join(t.TempDir(), "out")
			pr, err := artifact.Pull(ctx, repo, "1.0.0", out, artifact.PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if pr.Artifact.Descriptor.Digest != pkg.Manifest.Digest || pr.Artifact.Extension.Metadata.Name != "acme/sample" {
				t.Fatalf("pulled %+v", pr.Artifact)
			}
			if pr.Stats.Files != pkg.Files {
				t.Fatalf("unpacked %d files, packed %d", pr.Stats.Files, pkg.Files)
			}
			sameTree(t, src, out)
			// Pulling by digest gives the same.
			out2 := filepath.Join(t.TempDir(), "by-digest")
			if _, err := artifact.Pull(ctx, repo, pkg.Manifest.Digest.String(), out2, artifact.PullOptions{}); err != nil {
				t.Fatal(err)
			}
			sameTree(t, src, out2)
		})
	}
}

func TestPushWithoutCredentialsIsRefused(t *testing.T) {
	pkg := pack(t, sampleWithBlob(t, 1024))
	o := remoteOptions(distAuth)
	o.RegistryConfig = filepath.Join(t.TempDir(), "empty.json")
	repo, err := artifact.NewRepository(distAuth.Ref(uniqueRepo(t)), o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = artifact.Push(context.Background(), repo, "1.0.0", pkg, artifact.PushOptions{})
	if !errors.Is(err, auth.ErrBasicCredentialNotFound) {
		t.Fatalf("unauthenticated push: %v", err)
	}
}

func TestVersionsAreImmutableUnlessForced(t *testing.T) {
	ctx := context.Background()
	for _, reg := range []*testenv.Registry{distPlain, ggcrReg} {
		t.Run(reg.Name, func(t *testing.T) {
			src := sampleWithBlob(t, 1024)
			repo := openRepo(t, reg, uniqueRepo(t))
			first := pack(t, src)
			if _, err := artifact.Push(ctx, repo, "1.0.0", first, artifact.PushOptions{}); err != nil {
				t.Fatal(err)
			}
			again, err := artifact.Push(ctx, repo, "1.0.0", pack(t, src), artifact.PushOptions{})
			if err != nil || !again.Unchanged {
				t.Fatalf("re-push of identical content: %+v, %v", again, err)
			}
			os.WriteFile(filepath.Join(src, "z-last.txt"), []byte("changed\n"), 0o644)
			second := pack(t, src)
			_, err = artifact.Push(ctx, repo, "1.0.0", second, artifact.PushOptions{})
			if !errors.Is(err, artifact.ErrVersionExists) || !strings.Contains(err.Error(), first.Manifest.Digest.String()) {
				t.Fatalf("moving a version tag: %v", err)
			}
			if d, _ := repo.Resolve(ctx, "1.0.0"); d.Digest != first.Manifest.Digest {
				t.Fatalf("refused push still moved the tag to %s", d.Digest)
			}
			forced, err := artifact.Push(ctx, repo, "1.0.0", second, artifact.PushOptions{Force: true})
			if err != nil || forced.Replaced == nil || forced.Replaced.Digest != first.Manifest.Digest {
				t.Fatalf("forced push: %+v, %v", forced, err)
			}
			if d, _ := repo.Resolve(ctx, "1.0.0"); d.Digest != second.Manifest.Digest {
				t.Fatalf("forced push left the tag on %s", d.Digest)
			}
		})
	}
}

func TestPullRefusesNonEmptyTargetUnlessForced(t *testing.T) {
	ctx := context.Background()
	src := sampleWithBlob(t, 1024)
	repo := openRepo(t, distPlain, uniqueRepo(t))
	if _, err := artifact.Push(ctx, repo, "1.0.0", pack(t, src), artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "keep.txt"), []byte("mine"), 0o644)
	if _, err := artifact.Pull(ctx, repo, "1.0.0", out, artifact.PullOptions{}); !errors.Is(err, artifact.ErrTargetNotEmpty) {
		t.Fatalf("pull into a non-empty dir: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "keep.txt")); string(b) != "mine" {
		t.Fatal("refused pull touched the target")
	}
	if _, err := artifact.Pull(ctx, repo, "1.0.0", out, artifact.PullOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, out)
	assertNoLeftovers(t, filepath.Dir(out))
}

// assertNoLeftovers fails if a staging directory is left in parent.
func assertNoLeftovers(t testing.TB, parent string) {
	t.Helper()
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".mkt-pull-") {
			t.Errorf("staging directory left behind: %s", filepath.Join(parent, e.Name()))
		}
	}
}

func TestTransientFaultsAreRetried(t *testing.T) {
	ctx := context.Background()
	src := sampleWithBlob(t, 2<<20)
	pkg := pack(t, src)
	cases := []struct {
		name  string
		fault testenv.Fault
	}{
		{"reset during blob upload", testenv.Fault{Kind: testenv.Reset, Method: "PUT", PathContains: "/blobs/uploads/", Times: 2}},
		{"503 on blob upload", testenv.Fault{Kind: testenv.Status, Status: 503, Method: "PUT", PathContains: "/blobs/uploads/", Times: 1}},
		{"503 on manifest push", testenv.Fault{Kind: testenv.Status, Status: 503, Method: "PUT", PathContains: "/manifests/", Times: 1}},
		{"reset on blob download", testenv.Fault{Kind: testenv.Reset, Method: "GET", PathContains: "/blobs/sha256:", Times: 2}},
		{"truncated blob download", testenv.Fault{Kind: testenv.Truncate, After: 700 << 10, Method: "GET", PathContains: "/blobs/sha256:", Times: 2}},
		{"502 on manifest fetch", testenv.Fault{Kind: testenv.Status, Status: 502, Method: "GET", PathContains: "/manifests/", Times: 2}},
		{"slow blob download", testenv.Fault{Kind: testenv.Slow, Delay: 2e6, Method: "GET", PathContains: "/blobs/sha256:", Times: 1}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Clear()
			defer proxy.Clear()
			via := &testenv.Registry{Host: proxy.Host, PlainHTTP: true}
			repo := openRepo(t, via, fmt.Sprintf("%s-%d", uniqueRepo(t), i))
			proxy.Inject(tc.fault)
			if _, err := artifact.Push(ctx, repo, "1.0.0", pkg, artifact.PushOptions{}); err != nil {
				t.Fatalf("push through %s: %v", tc.name, err)
			}
			out := filepath.Join(t.TempDir(), "out")
			if _, err := artifact.Pull(ctx, repo, "1.0.0", out, artifact.PullOptions{}); err != nil {
				t.Fatalf("pull through %s: %v", tc.name, err)
			}
			if proxy.Hits() == 0 {
				t.Fatal("the fault was never injected: the test proves nothing")
			}
			sameTree(t, src, out)
		})
	}
}

func TestLastingFaultsFailClearlyAndLeaveNothing(t *testing.T) {
	ctx := context.Background()
	proxy.Clear()
	defer proxy.Clear()
	via := &testenv.Registry{Host: proxy.Host, PlainHTTP: true}
	repo := openRepo(t, via, uniqueRepo(t))
	pkg := pack(t, sampleWithBlob(t, 1<<20))
	if _, err := artifact.Push(ctx, repo, "1.0.0", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	proxy.Inject(testenv.Fault{Kind: testenv.Truncate, After: 100 << 10, Method: "GET", PathContains: "/blobs/" + pkg.Layer.Digest.String()})
	parent := t.TempDir()
	out := filepath.Join(parent, "new", "out")
	_, err := artifact.Pull(ctx, repo, "1.0.0", out, artifact.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("lasting truncation: %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("failed pull left %v in %s", entries, parent)
	}

	proxy.Clear()
	proxy.Inject(testenv.Fault{Kind: testenv.Status, Status: 503, Method: "PUT"})
	os.WriteFile(filepath.Join(t.TempDir(), "x"), nil, 0o644)
	_, err = artifact.Push(ctx, openRepo(t, via, uniqueRepo(t)+"-push"), "1.0.0", pkg, artifact.PushOptions{})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "attempts") {
		t.Fatalf("lasting 503 on push: %v", err)
	}
}

func TestTamperedContentIsRefused(t *testing.T) {
	ctx := context.Background()
	pkg := pack(t, sampleWithBlob(t, 256<<10))
	via := &testenv.Registry{Host: proxy.Host, PlainHTTP: true}
	repo := openRepo(t, via, uniqueRepo(t))
	if _, err := artifact.Push(ctx, repo, "1.0.0", pkg, artifact.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{pkg.Layer.Digest.String(), pkg.Config.Digest.String(), "/manifests/1.0.0"} {
		t.Run(strings.TrimPrefix(target, "/"), func(t *testing.T) {
			proxy.Clear()
			defer proxy.Clear()
			proxy.Inject(testenv.Fault{Kind: testenv.Corrupt, After: 40, Method: "GET", PathContains: target})
			out := filepath.Join(t.TempDir(), "out")
			_, err := artifact.Pull(ctx, repo, "1.0.0", out, artifact.PullOptions{})
			if proxy.Hits() == 0 {
				t.Fatal("no corruption injected")
			}
			if err == nil {
				t.Fatal("pull accepted content that does not match its digest")
			}
			if !errors.Is(err, artifact.ErrDigestMismatch) && !errors.Is(err, artifact.ErrUnsafeContent) {
				t.Fatalf("tampered content: want a digest mismatch, got %v", err)
			}
			if _, serr := os.Stat(out); !os.IsNotExist(serr) {
				t.Fatal("tampered pull left its target behind")
			}
			assertNoLeftovers(t, filepath.Dir(out))
		})
	}
}
