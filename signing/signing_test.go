package signing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/artifact"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

var (
	dist *testenv.Registry // CNCF distribution: cosign tags only
	ggcr *testenv.Registry // go-containerregistry: has the referrers API
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m,
		testenv.Distribution(&dist, testenv.DistributionOptions{}),
		func() (io.Closer, error) {
			var err error
			ggcr, err = testenv.StartGGCR()
			return ggcr, err
		}))
}

func registries() []*testenv.Registry { return []*testenv.Registry{dist, ggcr} }

func remoteOpts(t testing.TB) remote.Options {
	return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "config.json")}
}

func client(t testing.TB) *signing.Client {
	t.Helper()
	c, err := signing.NewClient(remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// publish pushes a small extension (content varied by salt) and returns
// its repository@digest reference.
func publish(t testing.TB, reg *testenv.Registry, repo, tag, salt string, force bool) string {
	t.Helper()
	dir := t.TempDir()
	desc := "apiVersion: marketplace.connectsoft.io/v1\nkind: Connector\nmetadata:\n  name: acme/signed\n  version: 1.0.0\nspec:\n  license: MIT\n  compatibility:\n    factory: \">=2.0.0\"\n"
	os.WriteFile(filepath.Join(dir, "extension.yaml"), []byte(desc), 0o644)
	os.WriteFile(filepath.Join(dir, "main.yaml"), []byte("salt: "+salt+"\n"), 0o644)
	ctx := context.Background()
	pkg, err := artifact.Pack(ctx, dir, artifact.PackOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer pkg.Close()
	r, err := artifact.NewRepository(reg.Ref(repo), remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Push(ctx, r, tag, pkg, artifact.PushOptions{Force: force}); err != nil {
		t.Fatal(err)
	}
	return reg.Ref(repo) + "@" + pkg.Manifest.Digest.String()
}

var repoSeq atomic.Int64

func repoName(t testing.TB) string {
	n := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()))
	if len(n) > 60 {
		n = n[:60]
	}
	return fmt.Sprintf("sig/%s-%d", strings.Trim(n, "-"), repoSeq.Add(1))
}

// keyPair writes a key pair made by mkt into dir and loads both halves.
func keyPair(t testing.TB, dir, prefix string) (*signing.Signer, *signing.Key) {
	t.Helper()
	s, k, _ := fixture.KeyPair(t, dir, prefix)
	if s.Fingerprint != k.Fingerprint {
		t.Fatalf("fingerprints of one pair differ: %s %s", s.Fingerprint, k.Fingerprint)
	}
	return s, k
}

func stockCosign(t testing.TB, home string) *testenv.Tool {
	t.Helper()
	tool, err := testenv.NewTool("cosign", home)
	if err != nil {
		t.Fatal(err)
	}
	tool.Dir = home
	return tool
}

var predicates = map[string]string{
	signing.ReviewV1:        `{"reviewer":"security@connectsoft.io","result":"approved","level":"public","checks":[{"name":"malware-scan","passed":true}]}`,
	signing.CompatibilityV1: `{"constraint":">=2.1.0 <3.0.0","tested":[{"factory":"2.1.0","result":"passed"},{"factory":"2.4.1","result":"passed"}],"platforms":["linux/amd64"]}`,
	signing.TermsV1:         `{"license":"Apache-2.0","pricing":{"model":"per-seat","price":4.5,"currency":"EUR"},"revenueShare":{"publisher":70,"platform":30},"agreementId":"AGR-7","effectiveDate":"2026-01-01T00:00:00Z"}`,
	signing.LifecycleV1:     `{"status":"active"}`,
}

func TestStockCosignVerifiesWhatMktSignsAndAttests(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	signer, key := keyPair(t, home, "mkt")
	for _, reg := range registries() {
		t.Run(reg.Name, func(t *testing.T) {
			ref := publish(t, reg, repoName(t), "1.0.0", "a", false)
			c := client(t)
			if _, err := c.Sign(ctx, ref, signer, signing.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			for typ, pred := range predicates {
				if _, err := c.Attest(ctx, ref, signer, typ, []byte(pred), signing.WriteOptions{}); err != nil {
					t.Fatalf("attest %s: %v", typ, err)
				}
			}
			cosign := stockCosign(t, home)
			out, err := cosign.Run(ctx, "verify", "--key", "mkt.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", ref)
			if err != nil || !strings.Contains(out, ref[strings.Index(ref, "@")+1:]) {
				t.Fatalf("stock cosign verify refused mkt's signature: %v\n%s", err, out)
			}
			for typ := range predicates {
				out, err := cosign.Run(ctx, "verify-attestation", "--key", "mkt.pub", "--type", typ, "--insecure-ignore-tlog=true", "--allow-http-registry", ref)
				if err != nil || !strings.Contains(out, "payload") {
					t.Fatalf("stock cosign verify-attestation --type %s refused: %v\n%s", typ, err, out)
				}
			}
			// And mkt agrees, with every type required.
			res, err := c.Verify(ctx, ref, signing.VerifyOptions{Keys: []*signing.Key{key}})
			if err != nil || refusal(res, keysOf(predicates)...) != "" {
				t.Fatalf("mkt verify: %+v %v", res, err)
			}
		})
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMktVerifiesWhatStockCosignSignsAndAttests(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	cosign := stockCosign(t, home)
	cosign.Env = append(cosign.Env, "COSIGN_PASSWORD=stock-pw")
	if _, err := cosign.Run(ctx, "generate-key-pair", "--output-key-prefix", "stock"); err != nil {
		t.Fatal(err)
	}
	key, err := signing.LoadKey(ctx, filepath.Join(home, "stock.pub"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, "review.json"), []byte(predicates[signing.ReviewV1]), 0o644)
	for _, reg := range registries() {
		t.Run(reg.Name, func(t *testing.T) {
			ref := publish(t, reg, repoName(t), "1.0.0", "b", false)
			if _, err := cosign.Run(ctx, "sign", "--key", "stock.key", "--tlog-upload=false", "--allow-http-registry", "--yes", ref); err != nil {
				t.Fatal(err)
			}
			if _, err := cosign.Run(ctx, "attest", "--key", "stock.key", "--type", signing.ReviewV1, "--predicate", "review.json", "--tlog-upload=false", "--allow-http-registry", "--yes", ref); err != nil {
				t.Fatal(err)
			}
			res, err := client(t).Verify(ctx, ref, signing.VerifyOptions{Keys: []*signing.Key{key}})
			if err != nil {
				t.Fatal(err)
			}
			if why := refusal(res, signing.ReviewV1); why != "" {
				t.Fatalf("mkt refused stock cosign's signature and attestation: %s", why)
			}
			if l := res.Latest(signing.ReviewV1); l == nil || !strings.Contains(string(l.Statement.Predicate), `"approved"`) {
				t.Fatalf("latest review: %+v", l)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	signer, key := keyPair(t, home, "good")
	_, other := keyPair(t, home, "other")
	for _, reg := range registries() {
		t.Run(reg.Name, func(t *testing.T) {
			c := client(t)
			repo := repoName(t)
			signed := publish(t, reg, repo, "1.0.0", "signed", false)
			if _, err := c.Sign(ctx, signed, signer, signing.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Attest(ctx, signed, signer, signing.ReviewV1, []byte(predicates[signing.ReviewV1]), signing.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			unsigned := publish(t, reg, repo, "2.0.0", "unsigned", false)
			copied := publish(t, reg, repo, "3.0.0", "copied", false)
			copyTag(t, reg, repo, digestOf(signed), digestOf(copied), artifact.SignatureTagSuffix)
			copyTag(t, reg, repo, digestOf(signed), digestOf(copied), artifact.AttestationTagSuffix)
			tampered := publish(t, reg, repo, "4.0.0", "tampered", false)
			if _, err := c.Sign(ctx, tampered, signer, signing.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			tamperSignaturePayload(t, reg, repo, digestOf(tampered))

			cases := []struct {
				name    string
				ref     string
				keys    []*signing.Key
				require []string
				want    string
			}{
				{"wrong key", signed, []*signing.Key{other}, nil, "signature not made for this digest by any of the 1 keys tried: " + other.Fingerprint[:16]},
				{"unsigned artifact", unsigned, []*signing.Key{key}, nil, "unsigned"},
				{"signature copied from another digest", copied, []*signing.Key{key}, nil, "signature not made for this digest by any of the 1 keys tried"},
				{"attestation about another digest", copied, []*signing.Key{key}, []string{signing.ReviewV1}, "review attestation not made for this digest by any of the 1 keys tried"},
				{"tampered payload", tampered, []*signing.Key{key}, nil, "signature not made for this digest by any of the 1 keys tried"},
				{"missing required attestation", signed, []*signing.Key{key}, []string{signing.TermsV1}, "no terms attestation"},
			}
			for _, tc := range cases {
				res, err := c.Verify(ctx, tc.ref, signing.VerifyOptions{Keys: tc.keys})
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				why := refusal(res, tc.require...)
				if why == "" {
					t.Errorf("%s: verification passed", tc.name)
					continue
				}
				if !strings.Contains(why, tc.want) {
					t.Errorf("%s: %q lacks %q", tc.name, why, tc.want)
				}
			}
			// A version tag re-pointed (forced) to other content: verifying
			// the tag checks what it names now, which nobody signed.
			if res, _ := c.Verify(ctx, reg.Ref(repo+":1.0.0"), signing.VerifyOptions{Keys: []*signing.Key{key}}); refusal(res) != "" {
				t.Fatalf("signed tag refused before the move: %s", refusal(res))
			}
			publish(t, reg, repo, "1.0.0", "moved", true)
			res, err := c.Verify(ctx, reg.Ref(repo+":1.0.0"), signing.VerifyOptions{Keys: []*signing.Key{key}})
			if err != nil || refusal(res) == "" || res.Digest == digestOf(signed) {
				t.Fatalf("re-pointed tag: %+v %v", res, err)
			}
		})
	}
}

// refusal says why res shows no trusted signature, or no trusted
// attestation of a required type, or "" when it shows them all: what the
// per-signature results carry, before any policy judges them.
func refusal(res *signing.Result, require ...string) string {
	var why []string
	signed := false
	for _, s := range res.Signatures {
		signed = signed || s.Verified
		if !s.Verified {
			why = append(why, s.Error)
		}
	}
	if len(res.Signatures) == 0 {
		why = append(why, "unsigned")
	}
	if signed {
		why = nil
	}
	for _, typ := range require {
		if res.Latest(typ) != nil {
			continue
		}
		found := false
		for _, a := range res.Attestations {
			if a.PredicateType == typ {
				found = true
				why = append(why, a.Error)
			}
		}
		if !found {
			why = append(why, "no "+signing.ShortName(typ)+" attestation")
		}
	}
	return strings.Join(why, " | ")
}

func digestOf(ref string) string { return ref[strings.Index(ref, "@")+1:] }

func TestNewestAttestationWinsAndDuplicatesDoNotAccumulate(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	signer, key := keyPair(t, home, "rev")
	signer2, key2 := keyPair(t, home, "rev2")
	ref := publish(t, dist, repoName(t), "1.0.0", "newest", false)
	c := client(t)
	approve := `{"reviewer":"r","result":"approved","level":"internal","time":"2026-05-01T10:00:00Z"}`
	revoke := `{"reviewer":"r","result":"revoked","level":"internal","notes":"CVE-2026-1","time":"2026-06-01T10:00:00Z"}`
	for _, p := range []string{revoke, approve} { // stored out of order on purpose
		if _, err := c.Attest(ctx, ref, signer, signing.ReviewV1, []byte(p), signing.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.Verify(ctx, ref, signing.VerifyOptions{Keys: []*signing.Key{key}})
	if err != nil {
		t.Fatal(err)
	}
	latest := res.Latest(signing.ReviewV1)
	if latest == nil || !strings.Contains(string(latest.Statement.Predicate), `"revoked"`) {
		t.Fatalf("approved then revoked should read revoked, got %+v", latest)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Sign(ctx, ref, signer, signing.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Sign(ctx, ref, signer2, signing.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	res, _ = c.Verify(ctx, ref, signing.VerifyOptions{Keys: []*signing.Key{key, key2}})
	if len(res.Signatures) != 2 {
		t.Fatalf("want 2 signatures (one per key, no duplicates), got %d", len(res.Signatures))
	}
}

func TestReferrersFormIsWrittenAndRead(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	signer, key := keyPair(t, home, "ref")
	ref := publish(t, ggcr, repoName(t), "1.0.0", "referrers", false)
	c := client(t)
	if _, err := c.Sign(ctx, ref, signer, signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attest(ctx, ref, signer, signing.LifecycleV1, []byte(`{"status":"deprecated","reason":"use 2.x","successor":"2.0.0"}`), signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(ctx, ref, signing.VerifyOptions{Keys: []*signing.Key{key}})
	if err != nil || refusal(res, signing.LifecycleV1) != "" {
		t.Fatalf("verify referrers: %+v %v", res, err)
	}
	for _, s := range res.Signatures {
		if s.Source != signing.FromReferrer {
			t.Fatalf("signature read from %s, want referrer only", s.Source)
		}
	}
	cosign := stockCosign(t, home)
	if out, err := cosign.Run(ctx, "verify", "--key", "ref.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", "--experimental-oci11", ref); err != nil {
		t.Fatalf("stock cosign verify --experimental-oci11 refused the referrer: %v\n%s", err, out)
	}
}

// A registry without the referrers API is asked for it once; after that
// its referrers tag is read directly, and referrers stored there are still
// found. A registry with the API is asked every time.
func TestReferrersAPIAbsenceIsRemembered(t *testing.T) {
	ctx := context.Background()
	signer, key := keyPair(t, t.TempDir(), "ref")
	for _, reg := range registries() {
		t.Run(reg.Name, func(t *testing.T) {
			proxy, err := testenv.StartFaultProxy(reg.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			via := &testenv.Registry{Host: proxy.Host, PlainHTTP: true}
			var refs []string
			for i := range 3 {
				ref := publish(t, via, repoName(t), "", fmt.Sprint("absent-", i), false)
				if _, err := client(t).Sign(ctx, ref, signer, signing.WriteOptions{Referrers: true}); err != nil {
					t.Fatal(err)
				}
				refs = append(refs, ref)
			}
			proxy.Clear()
			c := client(t)
			for _, ref := range refs {
				res, err := c.Verify(ctx, ref, signing.VerifyOptions{Keys: []*signing.Key{key}})
				if err != nil || refusal(res) != "" || len(res.Signatures) != 1 || res.Signatures[0].Source != signing.FromReferrer {
					t.Fatalf("verify %s: %+v %v", ref, res, err)
				}
			}
			want := len(refs)
			if !reg.Referrers {
				want = 1
			}
			if got := proxy.RequestsTo("/referrers/"); got != want {
				t.Fatalf("%d requests to the referrers API for %d artifacts, want %d", got, len(refs), want)
			}
		})
	}
}

func TestCopyKeepsSignaturesAndAttestations(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	signer, key := keyPair(t, home, "copy")
	repo := repoName(t)
	ref := publish(t, dist, repo, "1.0.0", "copy", false)
	c := client(t)
	c.Sign(ctx, ref, signer, signing.WriteOptions{})
	if _, err := c.Attest(ctx, ref, signer, signing.ReviewV1, []byte(predicates[signing.ReviewV1]), signing.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	src, _ := artifact.NewRepository(dist.Ref(repo), remoteOpts(t))
	dst, _ := artifact.NewRepository(ggcr.Ref(repo+"-mirror"), remoteOpts(t))
	if _, err := artifact.Copy(ctx, src, "1.0.0", dst, "1.0.0", artifact.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	layout, _, err := artifact.OpenLayout(filepath.Join(t.TempDir(), "airgap"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Copy(ctx, dst, "1.0.0", layout, "1.0.0", artifact.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	back, _ := artifact.NewRepository(dist.Ref(repo+"-back"), remoteOpts(t))
	if _, err := artifact.Copy(ctx, layout, "1.0.0", back, "1.0.0", artifact.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{ggcr.Ref(repo + "-mirror:1.0.0"), dist.Ref(repo + "-back:1.0.0")} {
		res, err := c.Verify(ctx, r, signing.VerifyOptions{Keys: []*signing.Key{key}})
		if err != nil || refusal(res, signing.ReviewV1) != "" {
			t.Fatalf("%s after copy: %+v %v", r, res, err)
		}
		if _, err := stockCosign(t, home).Run(ctx, "verify", "--key", "copy.pub", "--insecure-ignore-tlog=true", "--allow-http-registry", r); err != nil {
			t.Fatalf("stock cosign after copy: %v", err)
		}
	}
}

func TestPredicatesAreValidatedBeforeSigning(t *testing.T) {
	cases := []struct {
		typ, pred, want string
	}{
		{signing.ReviewV1, `{"reviewer":"r","level":"public"}`, `result "": want approved, rejected or revoked`},
		{signing.ReviewV1, `{"reviewer":"r","result":"approved","level":"public","score":3}`, `unknown field "score"`},
		{signing.ReviewV1, `{"reviewer":"r","result":"approved","level":"galactic"}`, `level "galactic"`},
		{signing.CompatibilityV1, `{"constraint":"soon","tested":[]}`, `not a semver constraint`},
		{signing.TermsV1, `{"license":"MIT","pricing":{"model":"flat","price":10,"currency":"euro"},"effectiveDate":"2026-01-01T00:00:00Z"}`, `ISO 4217`},
		{signing.TermsV1, `{"license":"MIT","pricing":{"model":"free"},"revenueShare":{"publisher":80,"platform":30},"effectiveDate":"2026-01-01T00:00:00Z"}`, `add up to 100`},
		{signing.LifecycleV1, `{"status":"yanked"}`, `reason is required`},
		{"https://example.com/custom/v1", `[1,2]`, `not a JSON object`},
	}
	c := client(t)
	signer, _ := keyPair(t, t.TempDir(), "v")
	for _, tc := range cases {
		// The registry is never reached: validation comes first.
		_, err := c.Attest(context.Background(), "127.0.0.1:1/none/such:1.0.0", signer, tc.typ, []byte(tc.pred), signing.WriteOptions{})
		var pe *signing.PredicateError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: want a predicate error with %q, got %v", signing.ShortName(tc.typ), tc.pred, tc.want, err)
		}
	}
	out, err := signing.NormalizePredicate(signing.LifecycleV1, []byte(`{"status":"active"}`), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil || !strings.Contains(string(out), `"time":"2026-01-02T03:04:05Z"`) {
		t.Fatalf("missing time not filled: %s %v", out, err)
	}
}

func TestVerifyManyKeepsOrderAndVerdicts(t *testing.T) {
	ctx := context.Background()
	signer, key := keyPair(t, t.TempDir(), "many")
	c := client(t)
	var refs []string
	for i := 0; i < 6; i++ {
		ref := publish(t, dist, repoName(t), fmt.Sprintf("1.0.%d", i), fmt.Sprint(i), false)
		if i%2 == 0 {
			if _, err := c.Sign(ctx, ref, signer, signing.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		refs = append(refs, ref)
	}
	res, err := c.VerifyMany(ctx, refs, signing.VerifyOptions{Keys: []*signing.Key{key}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Reference != refs[i] || (refusal(r) == "") != (i%2 == 0) {
			t.Fatalf("result %d: %s refused for %q", i, r.Reference, refusal(r))
		}
	}
}

// A signature or attestation written as a referrer holds that one
// signature or attestation, not the ones already in cosign's tags: each
// is listed once, by inspect and by verification, however they were
// written. Before, cosign's entity was read from the tags and written
// whole into the referrer, so every tag-stored attestation showed twice.
func TestReferrersHoldOnlyTheNewSignatureOrAttestation(t *testing.T) {
	ctx := context.Background()
	signer, key := keyPair(t, t.TempDir(), "mix")
	ref := publish(t, ggcr, repoName(t), "1.0.0", "mixed", false)
	c := client(t)
	approve := `{"reviewer":"r","result":"approved","level":"internal","time":"2026-05-01T10:00:00Z"}`
	deprecate := `{"status":"deprecated","reason":"use 2.x","successor":"2.0.0"}`
	if _, err := c.Sign(ctx, ref, signer, signing.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attest(ctx, ref, signer, signing.ReviewV1, []byte(approve), signing.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(ctx, ref, signer, signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attest(ctx, ref, signer, signing.LifecycleV1, []byte(deprecate), signing.WriteOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(ctx, ref, signing.VerifyOptions{Keys: []*signing.Key{key}})
	if err != nil {
		t.Fatal(err)
	}
	var sigs, atts []string
	for _, s := range res.Signatures {
		sigs = append(sigs, s.Source)
	}
	for _, a := range res.Attestations {
		atts = append(atts, a.Source+" "+a.PredicateType)
	}
	sort.Strings(sigs)
	sort.Strings(atts)
	wantSigs := []string{signing.FromReferrer, signing.FromTag}
	wantAtts := []string{signing.FromReferrer + " " + signing.LifecycleV1, signing.FromTag + " " + signing.ReviewV1}
	sort.Strings(wantAtts)
	if !slices.Equal(sigs, wantSigs) || !slices.Equal(atts, wantAtts) {
		t.Fatalf("signatures %v, attestations %v; want %v and %v, each once", sigs, atts, wantSigs, wantAtts)
	}
}
