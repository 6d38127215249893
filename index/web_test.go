package index_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts a headless Chromium from the system (Debian's chromium
// package, which .ci/run installs); a missing browser fails the test.
// extra are further command-line options (a host resolver rule).
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := os.Getenv("MKT_CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Fatalf("no chromium on $PATH (apt-get install chromium, or set MKT_CHROMIUM): %v", err)
		}
	}
	// Chromium's helper processes outlive the browser by a moment and keep
	// writing its profile, so the profile is removed with retries after the
	// browser is gone, rather than by t.TempDir's one-shot cleanup.
	profile, err := os.MkdirTemp("", "mkt-chromium-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

func TestCatalogPageInChromium(t *testing.T) {
	w := newAPIWorld(t)
	ctx := browser(t)
	var total, results, install, badges, versions, missing, radius string
	var shot []byte
	err := chromedp.Run(ctx,
		chromedp.Navigate(w.srv.URL+"/"),
		chromedp.Text("#total", &total, chromedp.ByQuery),
		// Search as a person would: type, submit, read.
		chromedp.SendKeys(`input[name="q"]`, "crm", chromedp.ByQuery),
		chromedp.Submit(`input[name="q"]`, chromedp.ByQuery),
		// Only the results page carries the query as an attribute; the old
		// page (which lists the same card) must not be read after it went.
		chromedp.WaitVisible(`input[name="q"][value="crm"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`.result[data-name="acme/public-crm"]`, chromedp.ByQuery),
		chromedp.Text("main", &results, chromedp.ByQuery),
		chromedp.Click(`.result[data-name="acme/public-crm"] a`, chromedp.ByQuery),
		chromedp.WaitVisible("#install", chromedp.ByQuery),
		chromedp.Text("#install", &install, chromedp.ByQuery),
		chromedp.Text("#extension", &badges, chromedp.ByQuery),
		chromedp.Text("#versions", &versions, chromedp.ByQuery),
		// The stylesheet applies under the Content-Security-Policy.
		chromedp.Evaluate(`getComputedStyle(document.querySelector('.badge')).borderTopLeftRadius`, &radius),
		chromedp.FullScreenshot(&shot, 100),
		chromedp.Navigate(w.srv.URL+"/extensions/acme/secret"),
		chromedp.Text("body", &missing, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(os.TempDir(), "mkt-catalog-extension.png"), shot, 0o644)
	if !strings.Contains(total, "1 extension") {
		t.Errorf("anonymous catalog total %q, want the one public extension", total)
	}
	if !strings.Contains(results, "acme/public-crm") || strings.Contains(results, "acme/secret") {
		t.Errorf("search results: %q", results)
	}
	if !strings.Contains(install, "mkt install acme/public-crm@1.1.0 --index "+publicURL) {
		t.Errorf("install command %q", install)
	}
	for _, b := range []string{"no trusted signature", "reviewed", "no policy"} {
		if !strings.Contains(badges, b) {
			t.Errorf("extension page badges %q lack %q", badges, b)
		}
	}
	if radius != "999px" {
		t.Errorf("the stylesheet did not apply under the CSP: a badge's border radius is %q", radius)
	}
	if i, j := strings.Index(versions, "1.1.0"), strings.Index(versions, "1.0.0"); i < 0 || j < 0 || i > j {
		t.Errorf("versions table %q, want 1.1.0 above 1.0.0", versions)
	}
	if !strings.Contains(missing, "no extension acme/secret") {
		t.Errorf("a private extension's page, anonymous: %q", missing)
	}
}
