package billing_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace"
	"github.com/connectsoft/marketplace/index/billing"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/signing"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

var dist *testenv.Registry // CNCF distribution, where statements are pushed

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Distribution(&dist, testenv.DistributionOptions{})))
}

// world is a store holding acme's extension acme/w with usage terms and
// other's extension other/w, and a builder over it.
type world struct {
	t  *testing.T
	st store.Store
	b  *billing.Builder
	n  int
}

func newWorld(t *testing.T, st store.Store) *world {
	ctx := context.Background()
	eff := nov.AddDate(0, -2, 0)
	for _, v := range []*store.Version{
		version("acme/w", "1.0.0", attestation("fp-acme", termsJSON("usage", "0.5", "EUR", "30", eff))),
		version("other/w", "1.0.0", attestation("fp-other", termsJSON("usage", "9", "EUR", "30", eff))),
	} {
		v.Tenant, v.Repository, v.Digest = v.Publisher(), "reg.example/"+v.Name, "sha256:"+strings.Repeat("a", 64)
		if _, err := st.ClaimName(ctx, v.Name, v.Tenant, v.Repository); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpsertVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	return &world{t: t, st: st, b: &billing.Builder{Usage: st, Versions: st, Closed: st}}
}

// use records a pull of name by tenant at, received at received.
func (w *world) use(name, tenant string, at, received time.Time) {
	w.t.Helper()
	w.n++
	pub, _, _ := strings.Cut(name, "/")
	_, err := w.st.RecordUsage(context.Background(), []*store.UsageEvent{{Source: "test", ID: fmt.Sprint(w.n), At: at, ReceivedAt: received,
		Tenant: tenant, Owner: pub, Publisher: pub, Name: name, Version: "1.0.0", Digest: "sha256:" + strings.Repeat("a", 64), Type: "pull", Quantity: 1}})
	if err != nil {
		w.t.Fatal(err)
	}
}

func remoteOpts(t testing.TB) remote.Options {
	return remote.Options{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "config.json")}
}

// TestCloseFreezesSignsAndPushes runs on both stores: closing too early is
// refused; a close freezes the statement, pushes it and refuses a second
// close; usage that arrives after the close leaves it unchanged and lands
// in December as an adjustment of November.
func TestCloseFreezesSignsAndPushes(t *testing.T) {
	for _, c := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, c.open(t))
			signer, _, _ := fixture.KeyPair(t, t.TempDir(), "operator")
			w.use("acme/w", "t1", day(3), day(3))
			w.use("acme/w", "t2", day(30, 23), day(30, 23))
			w.use("other/w", "t1", day(3), day(3))
			o := billing.CloseOptions{Signer: signer, To: dist.Ref("statements/" + c.name), Remote: remoteOpts(t), Now: nov.AddDate(0, 1, 0).Add(time.Minute)}
			if _, err := w.b.Close(ctx, w.st, "acme", "2026-11", o); !errors.Is(err, billing.ErrTooEarly) {
				t.Fatalf("close a minute after the month: %v, want ErrTooEarly", err)
			}
			o.Now = nov.AddDate(0, 1, 1) // December 2nd
			res, err := w.b.Close(ctx, w.st, "acme", "2026-11", o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Tag != "acme-2026-11" || !strings.HasPrefix(res.Reference, dist.Ref("statements/"+c.name)+"@sha256:") ||
				res.Statement.Status != "closed" || len(res.Statement.Totals) != 1 || res.Statement.Totals[0].Gross != "1.00" {
				t.Fatalf("closed %+v\nstatement %+v", res, res.Statement)
			}
			if _, err := w.b.Close(ctx, w.st, "acme", "2026-11", o); !errors.Is(err, store.ErrStatementClosed) {
				t.Fatalf("second close: %v, want ErrStatementClosed", err)
			}
			// Late: a November pull received on December 3rd.
			w.use("acme/w", "t1", day(20), nov.AddDate(0, 1, 2))
			again, err := w.b.Preview(ctx, "acme", "2026-11", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if a, b := must(billing.EncodeStatement(again)), must(billing.EncodeStatement(res.Statement)); string(a) != string(b) {
				t.Fatalf("the closed statement changed:\n%s\nwas\n%s", a, b)
			}
			dec, err := w.b.Preview(ctx, "acme", "2026-12", nov.AddDate(0, 2, 0))
			if err != nil {
				t.Fatal(err)
			}
			if len(dec.Lines) != 1 || !dec.Lines[0].Adjustment || dec.Lines[0].OriginalPeriod != "2026-11" || dec.Lines[0].Units != 1 || dec.Lines[0].Gross != "0.50" {
				t.Fatalf("december %+v, want one adjustment of 2026-11 for the late pull", dec.Lines)
			}
			// January cannot close while December, which had usage, is open.
			o.Now = nov.AddDate(0, 3, 2)
			if _, err := w.b.Close(ctx, w.st, "acme", "2027-01", o); !errors.Is(err, billing.ErrPreviousOpen) {
				t.Fatalf("close January before December: %v", err)
			}
		})
	}
}

// TestClosedStatementVerifiesWithStockCosign: a publisher pulls the
// statement and its signature with stock oras, and stock cosign
// verify-blob accepts them with the operator's public key; one changed
// byte and it refuses. mkt verify (marketplace.VerifyKeys) accepts the
// artifact itself.
func TestClosedStatementVerifiesWithStockCosign(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, storetest.SQLite(t))
	keys := t.TempDir()
	signer, key, pub := fixture.KeyPair(t, keys, "operator")
	w.use("acme/w", "t1", day(3), day(3))
	res, err := w.b.Close(ctx, w.st, "acme", "2026-11", billing.CloseOptions{Signer: signer, To: dist.Ref("acme/statements"),
		Remote: remoteOpts(t), Now: nov.AddDate(0, 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	oras, err := testenv.NewTool("oras", home)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	oras.Dir = out
	if _, err := oras.Run(ctx, "pull", "--plain-http", dist.Ref("acme/statements:acme-2026-11")); err != nil {
		t.Fatal(err)
	}
	cosign, err := testenv.NewTool("cosign", home)
	if err != nil {
		t.Fatal(err)
	}
	cosign.Dir = out
	verify := func() error {
		_, err := cosign.Run(ctx, "verify-blob", "--key", pub, "--signature", billing.SignatureFile, "--insecure-ignore-tlog", billing.StatementFile)
		return err
	}
	if err := verify(); err != nil {
		t.Fatalf("stock cosign refused the statement: %v", err)
	}
	path := filepath.Join(out, billing.StatementFile)
	body, _ := os.ReadFile(path)
	st, err := billing.DecodeStatement(body)
	if err != nil || st.Publisher != "acme" || st.Period != "2026-11" || st.Status != "closed" {
		t.Fatalf("pulled statement %+v: %v", st, err)
	}
	i := strings.Index(string(body), `"gross": "0.50"`) + len(`"gross": "0.`)
	body[i] = '9' // 0.50 → 0.90
	os.WriteFile(path, body, 0o644)
	if err := verify(); err == nil {
		t.Fatal("stock cosign accepted a statement with one byte changed")
	}
	d, err := marketplace.VerifyKeys(ctx, res.Reference, []*signing.Key{key}, nil, remoteOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed {
		t.Fatalf("mkt verify refused the statement artifact:\n%s", d.Text())
	}
	_, otherKey, _ := fixture.KeyPair(t, keys, "other")
	if d, err := marketplace.VerifyKeys(ctx, res.Reference, []*signing.Key{otherKey}, nil, remoteOpts(t)); err != nil || d.Allowed {
		t.Fatalf("another key verified the statement: %v", err)
	}
}
