package index_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/connectsoft/marketplace/index"
	"github.com/connectsoft/marketplace/index/catalog"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/remote"
	"github.com/connectsoft/marketplace/testenv"
	"github.com/connectsoft/marketplace/testenv/fixture"
)

// extPagePolicy trusts acme's key (for acme's extensions only), the
// review pipeline's and the curators'; audit mode, so what it would deny
// is still listed, with its verdict.
const extPagePolicy = `apiVersion: marketplace.connectsoft.io/v1
kind: Policy
mode: audit
trustRoots:
  - {name: acme, keys: [acme.pub], publishers: [acme]}
  - {name: pipeline, keys: [pipeline.pub]}
  - {name: curators, keys: [curator.pub]}
rules:
  - name: all
    match: {repositories: ["**"]}
    signatures: {trustRoots: [acme]}
    attestations:
      - {type: review, trustRoots: [pipeline, curators]}
    lifecycle: {allowDeprecated: true}
`

// extPageWorld is a real registry with acme's extensions pushed, signed
// and attested with the project's own signing code, ingested by a real
// ingester under a policy, served by the API and pages.
type extPageWorld struct {
	url    string
	st     store.Store
	acmeFP string
	tokens map[string]string // tenant → reader and publisher token
}

const hugeReadmeSize = 300 << 10

func newExtPageWorld(t *testing.T) *extPageWorld {
	t.Helper()
	ctx := context.Background()
	reg := startRegistry(t, testenv.DistributionOptions{})
	dir := t.TempDir()
	pub := fixture.NewPublisher(t, reg)
	acme, acmeKey, _ := fixture.KeyPair(t, dir, "acme")
	pipeline, _, _ := fixture.KeyPair(t, dir, "pipeline")
	curator, _, _ := fixture.KeyPair(t, dir, "curator")
	pol := (&fixture.PolicyWorld{T: t, Dir: dir}).MustPolicy(strings.TrimPrefix(extPagePolicy, "apiVersion: marketplace.connectsoft.io/v1\nkind: Policy\n"))
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	public := &index.Source{Name: "public", Registry: reg.Host, PlainHTTP: reg.PlainHTTP, Repositories: []string{"pub/**"}, Tenant: "acme", Visibility: store.Public}
	private := &index.Source{Name: "private", Registry: reg.Host, PlainHTTP: reg.PlainHTTP, Repositories: []string{"priv/**"}, Tenant: "acme", Visibility: store.Private}
	ing := &index.Ingester{Store: st, Policy: pol, Remote: func(*index.Source) remote.Options { return pub.Remote }}
	ingest := func(src *index.Source, ref string) {
		t.Helper()
		repo, digest, _ := strings.Cut(ref, "@")
		if _, err := ing.Ingest(ctx, src, strings.TrimPrefix(repo, reg.Host+"/"), digest); err != nil {
			t.Fatalf("ingest %s: %v", ref, err)
		}
	}
	now := time.Now().UTC()
	ts := now.Add(-time.Hour).Format(time.RFC3339)
	publish := func(src *index.Source, prefix string, e fixture.Ext) string {
		t.Helper()
		ref := pub.Publish(prefix, e)
		pub.Sign(ref, acme)
		return ref
	}
	// The review pipeline's key, which the policy trusts (for reviews),
	// signs cheap terms for acme's extension: not a key of acme's, so
	// they must not count.
	httpRef := publish(public, "pub", fixture.Ext{Name: "acme/http", Version: "1.0.0"})
	pub.Attest(httpRef, pipeline, "terms", fmt.Sprintf(`{"license":"MIT","pricing":{"model":"flat","price":0.01,"currency":"EUR"},"agreementId":"FORGED-TERMS","effectiveDate":"2026-01-01T00:00:00Z","time":%q}`, now.Add(-time.Hour).Format(time.RFC3339)))
	ingest(public, httpRef)
	for _, v := range []string{"1.2.0", "1.9.0", "1.10.0"} {
		ref := publish(public, "pub", fixture.Ext{Name: "acme/crm", Version: v, Description: "Sync accounts with the CRM.",
			Deps: map[string]string{"acme/http": "^1.0.0"}, Permissions: []string{"network", "secrets.read"},
			Files: map[string]string{"README.md": "# CRM connector " + v + "\n\n## Setup\n\nRun **mkt install** and set `CRM_TOKEN`.\n"}})
		switch v {
		case "1.9.0":
			pub.Attest(ref, acme, "lifecycle", fmt.Sprintf(`{"status":"yanked","reason":"leaks the CRM token to the log","successor":"1.10.0","time":%q}`, ts))
		case "1.10.0":
			pub.Attest(ref, acme, "compatibility", fmt.Sprintf(`{"constraint":">=2.1.0 <3.0.0","tested":[{"factory":"2.1.0","result":"passed"},{"factory":"2.4.1","result":"passed"}],"platforms":["linux/amd64"],"time":%q}`, ts))
			pub.Attest(ref, acme, "terms", fmt.Sprintf(`{"license":"MIT","pricing":{"model":"per-seat","price":12.5,"currency":"EUR"},"revenueShare":{"publisher":80,"platform":20},"agreementId":"AGR-2026-7","effectiveDate":"2026-01-01T00:00:00Z","time":%q}`, ts))
			pub.Attest(ref, pipeline, "review", fmt.Sprintf(`{"reviewer":"pipeline","result":"approved","level":"public","checks":[{"name":"secrets","passed":true}],"findings":[{"severity":"low","message":"shell script without a shebang","location":"bin/sync:1"}],"time":%q}`, ts))
			pub.Attest(ref, curator, "review", fmt.Sprintf(`{"reviewer":"curator","result":"approved","level":"public","notes":"read the code","time":%q}`, ts))
		}
		ingest(public, ref)
	}
	ingest(public, publish(public, "pub", fixture.Ext{Name: "acme/hostile", Version: "1.0.0", Files: map[string]string{"README.md": hostileReadme}}))
	huge := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n\n", hugeReadmeSize/58+1)
	ingest(public, publish(public, "pub", fixture.Ext{Name: "acme/huge", Version: "1.0.0", Files: map[string]string{"README.md": huge + "THE-END-MARKER\n"}}))
	ingest(public, publish(public, "pub", fixture.Ext{Name: "acme/plain", Version: "1.0.0", NoReadme: true, Description: "Plain: no README, this description instead."}))
	secret := publish(private, "priv", fixture.Ext{Name: "acme/secret", Version: "1.0.0", Permissions: []string{"secrets.write"}, Description: "private description",
		Files: map[string]string{"README.md": "# TOP-SECRET-README\n"}})
	pub.Attest(secret, acme, "terms", fmt.Sprintf(`{"license":"MIT","pricing":{"model":"flat","price":999,"currency":"USD"},"agreementId":"SECRET-AGREEMENT","effectiveDate":"2026-01-01T00:00:00Z","time":%q}`, ts))
	ingest(private, secret)
	// Usage the chart and the download counts read.
	var events []*store.UsageEvent
	for i, typ := range []string{store.UsagePull, store.UsagePull, store.UsagePull, store.UsageInstall, store.UsageInstall} {
		events = append(events, &store.UsageEvent{Source: "test", ID: fmt.Sprint("e", i), At: now.Add(-time.Duration(i+1) * time.Hour), Tenant: "globex", Owner: "acme",
			Publisher: "acme", Name: "acme/crm", Version: "1.10.0", Digest: "sha256:x", Type: typ, Quantity: 1})
	}
	if _, err := st.RecordUsage(ctx, events); err != nil {
		t.Fatal(err)
	}
	w := &extPageWorld{st: st, acmeFP: acmeKey.Fingerprint, tokens: map[string]string{}}
	for _, tenant := range []string{"acme", "globex"} {
		c, err := index.CreateToken(ctx, st, tenant, []string{"reader", "publisher"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[tenant] = c.Secret
	}
	cat := catalog.New(st)
	cat.MaxLag = 0
	api := &index.API{Store: st, Catalog: cat, Operator: "ops", PublicURL: publicURL, Metering: st,
		Publishers: []index.Publisher{{Name: "acme", Tenant: "acme", Tier: "verified", Fingerprints: []string{acmeKey.Fingerprint}}}}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

// details reads the JSON details answer as tenant ("" anonymous).
func (w *extPageWorld) details(t *testing.T, tenant, name string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.url+"/api/v1/extensions/"+name, nil)
	if tenant != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[tenant])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// asTenant sends tenant's token with every request of the browser.
func asTenant(token string) chromedp.Action {
	return network.SetExtraHTTPHeaders(network.Headers{"Authorization": "Bearer " + token})
}

// TestExtensionPageShowsEachSectionInChromium: the page of acme/crm, as
// acme's reader sees it, shows every section from the evidence the
// ingester verified: README, permissions, dependencies linked, the
// compatibility attestation, the pipeline's findings and the curator's
// approval, the publisher's terms, signers, tier, versions by SemVer with
// the yanked one's reason, download counts, and a copy button with a
// name; at 375 px the install command wraps inside its box.
func TestExtensionPageShowsEachSectionInChromium(t *testing.T) {
	w := newExtPageWorld(t)
	ctx := browser(t)
	sections := map[string]*string{}
	for _, id := range []string{"readme", "permissions", "dependencies", "compatibility", "review", "terms", "signers", "versions", "downloads", "publisher-tier"} {
		sections[id] = new(string)
	}
	var depHref, tierHref, install, status, selection string
	var versionOrder []string
	var buttonHidden bool
	var button []*cdp.Node
	actions := []chromedp.Action{network.Enable(), asTenant(w.tokens["acme"]), chromedp.Navigate(w.url + "/extensions/acme/crm"), chromedp.WaitVisible("#copy-install", chromedp.ByQuery)}
	for id, out := range sections {
		actions = append(actions, chromedp.Text("#"+id, out, chromedp.ByQuery))
	}
	actions = append(actions,
		chromedp.AttributeValue(`#dependencies a`, "href", &depHref, nil, chromedp.ByQuery),
		chromedp.AttributeValue(`#publisher-tier a`, "href", &tierHref, nil, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll('#versions tbody tr')].map(r => r.dataset.version)`, &versionOrder),
		chromedp.Evaluate(`document.getElementById('copy-install').hidden`, &buttonHidden),
		chromedp.Nodes("#copy-install", &button, chromedp.ByQuery),
		chromedp.Text("#install", &install, chromedp.ByQuery),
		chromedp.Click("#copy-install", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('copy-status').textContent.length > 0`, nil),
		chromedp.Text("#copy-status", &status, chromedp.ByQuery),
		chromedp.Evaluate(`window.getSelection().toString()`, &selection),
	)
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatal(err)
	}
	// The page with every section filled in, at both widths, beside the
	// other pages' screenshots (MKT_SCREENSHOTS; the tutorials show it).
	for _, width := range []int64{1280, 375} {
		var shot []byte
		if err := chromedp.Run(ctx, chromedp.EmulateViewport(width, 900), chromedp.FullScreenshot(&shot, 100)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(screenshotDir(t), fmt.Sprintf("extension-sections-%d.png", width)), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{
		"readme":         {"CRM connector 1.10.0", "Setup", "CRM_TOKEN"},
		"permissions":    {"network", "secrets.read"},
		"dependencies":   {"acme/http", "^1.0.0"},
		"compatibility":  {">=2.0.0 <3.0.0", ">=2.1.0 <3.0.0", "2.4.1", "linux/amd64", "verified", w.acmeFP[:16]},
		"review":         {"approved", "low", "shell script without a shebang", "bin/sync:1", "curator", "read the code"},
		"terms":          {"MIT", "per-seat", "12.5 EUR", "publisher 80% · platform 20%", "AGR-2026-7", "2026-01-01", w.acmeFP},
		"signers":        {w.acmeFP},
		"versions":       {"yanked", "leaks the CRM token to the log", "use 1.10.0"},
		"downloads":      {"3 pulls", "2 installs"},
		"publisher-tier": {"acme", "verified publisher"},
	}
	for id, subs := range want {
		for _, s := range subs {
			if !strings.Contains(*sections[id], s) {
				t.Errorf("section #%s lacks %q: %q", id, s, *sections[id])
			}
		}
	}
	if strings.Contains(*sections["review"], "not verified") || strings.Contains(*sections["compatibility"], "not verified") {
		t.Errorf("evidence signed by trusted keys shown as not verified: %q / %q", *sections["review"], *sections["compatibility"])
	}
	if depHref != "/extensions/acme/http" || tierHref != "/publishers/acme" {
		t.Errorf("dependency link %q, publisher link %q", depHref, tierHref)
	}
	if strings.Join(versionOrder, " ") != "1.10.0 1.9.0 1.2.0" {
		t.Errorf("versions in the order %v, want 1.10.0 1.9.0 1.2.0 (SemVer, highest first)", versionOrder)
	}
	// The copy button: shown by its script, named for assistive
	// technology, and it copies or, where the clipboard is refused,
	// selects the command and says so.
	if buttonHidden || len(button) != 1 {
		t.Fatalf("copy button hidden %v (%d found)", buttonHidden, len(button))
	}
	var name string
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		nodes, err := accessibility.GetPartialAXTree().WithBackendNodeID(button[0].BackendNodeID).WithFetchRelatives(false).Do(ctx)
		if err != nil || len(nodes) == 0 || nodes[0].Name == nil {
			return fmt.Errorf("accessibility tree of the copy button: %v", err)
		}
		return json.Unmarshal(nodes[0].Name.Value, &name)
	})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToLower(name), "copy") || !strings.Contains(strings.ToLower(name), "install") {
		t.Errorf("copy button's accessible name %q", name)
	}
	wantCmd := "mkt install acme/crm@1.10.0 --index " + publicURL
	if !strings.HasPrefix(install, wantCmd) {
		t.Errorf("install command %q", install)
	}
	if status != "Copied the install command." && (!strings.Contains(status, "selected") || strings.TrimSpace(selection) != strings.TrimSpace(install)) {
		t.Errorf("after the click: status %q, selection %q", status, selection)
	}
	// 375 px: the command wraps inside its box rather than widening it.
	var boxScroll, boxClient int
	var cmdVisible bool
	if err := chromedp.Run(ctx,
		chromedp.EmulateViewport(375, 800),
		chromedp.Reload(),
		chromedp.WaitVisible("#install", chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById('install-box').scrollWidth`, &boxScroll),
		chromedp.Evaluate(`document.getElementById('install-box').clientWidth`, &boxClient),
		chromedp.Evaluate(`(() => { const r = document.getElementById('install').getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; })()`, &cmdVisible),
	); err != nil {
		t.Fatal(err)
	}
	if boxScroll > boxClient || !cmdVisible {
		t.Errorf("at 375 px the install box scrolls (scrollWidth %d > clientWidth %d) or the command is off screen (visible %v)", boxScroll, boxClient, cmdVisible)
	}
}

// TestExtensionReadmeStaysInertInChromium: a README that tries script,
// event handlers, javascript: and data: links, frames, forms, styles,
// outside images and the page's own ids runs nothing in a real browser
// and keeps none of it; a huge README is cut with a note; an extension
// without one shows its description.
func TestExtensionReadmeStaysInertInChromium(t *testing.T) {
	w := newExtPageWorld(t)
	ctx := browser(t)
	var pwned, dialogs, hrefs []string
	var problem, hugeNote, hugeText, plain, installID string
	var hrefJS bool
	var mu sync.Mutex
	chromedp.ListenTarget(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			mu.Lock()
			dialogs = append(dialogs, d.Message)
			mu.Unlock()
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(false))
		}
	})
	err := chromedp.Run(ctx,
		chromedp.Navigate(w.url+"/extensions/acme/hostile"),
		chromedp.WaitVisible(".readme", chromedp.ByQuery),
		// Give every handler its chance: click each link and summary,
		// then read what ran.
		chromedp.Evaluate(`document.querySelectorAll('.readme a, .readme summary').forEach(a => { if (!a.href || !a.href.startsWith('http')) a.click(); }); true`, nil),
		chromedp.Evaluate(`[window.__pwned, parent.__pwned].filter(Boolean)`, &pwned),
		chromedp.Evaluate(`[...document.querySelectorAll('.readme [href]')].map(a => a.getAttribute('href'))`, &hrefs),
		chromedp.Evaluate(`[...document.querySelectorAll('.readme a')].some(a => /^\s*(javascript|data|vbscript):/i.test(a.href))`, &hrefJS),
		chromedp.Evaluate(`(() => {
			const r = document.querySelector('.readme');
			const bad = r.querySelector('script, iframe, frame, object, embed, img, style, form, input, button, svg, link, meta, base');
			if (bad) return 'element ' + bad.tagName;
			for (const el of r.querySelectorAll('*')) for (const a of el.attributes) if (/^on|^style$|^srcdoc$/i.test(a.name)) return 'attribute ' + a.name;
			return '';
		})()`, &problem),
		chromedp.Evaluate(`document.querySelectorAll('#install').length + ':' + document.getElementById('install').tagName`, &installID),
		chromedp.Navigate(w.url+"/extensions/acme/huge"),
		chromedp.Text("#note-of-readme", &hugeNote, chromedp.ByQuery),
		chromedp.Text(".readme", &hugeText, chromedp.ByQuery),
		chromedp.Navigate(w.url+"/extensions/acme/plain"),
		chromedp.Text(`#readme [data-readme="none"]`, &plain, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pwned) > 0 || len(dialogs) > 0 {
		t.Errorf("the README ran script: %v %v", pwned, dialogs)
	}
	if problem != "" || hrefJS {
		t.Errorf("the README kept %q (javascript:/data: link: %v)", problem, hrefJS)
	}
	for _, h := range hrefs {
		if !strings.HasPrefix(h, "https://") && !strings.HasPrefix(h, "#readme-") {
			t.Errorf("README link href %q: want only absolute https links and in-page anchors", h)
		}
	}
	if installID != "1:PRE" {
		t.Errorf("the README took the page's #install id: %s", installID)
	}
	if !strings.Contains(hugeNote, fmt.Sprint(len(strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n\n", hugeReadmeSize/58+1))+len("THE-END-MARKER\n"))) ||
		!strings.Contains(hugeNote, "262144") || strings.Contains(hugeText, "THE-END-MARKER") || !strings.Contains(hugeText, "Lorem ipsum") {
		t.Errorf("huge README: note %q; shows its end: %v", hugeNote, strings.Contains(hugeText, "THE-END-MARKER"))
	}
	if !strings.Contains(plain, "Plain: no README, this description instead.") {
		t.Errorf("an extension without a README shows %q, want its description", plain)
	}
}

// TestExtensionPageLeaksNoPrivateSectionsInChromium: acme's private
// extension, its README, permissions and terms, are acme's: an anonymous
// browser and globex's token get the same 404 as for a name that does not
// exist, from the page and from the details answer, and no public page
// names them; acme's own token sees them.
func TestExtensionPageLeaksNoPrivateSectionsInChromium(t *testing.T) {
	w := newExtPageWorld(t)
	ctx := browser(t)
	bg := context.Background()
	// A newer acme/crm held in the public stage's quarantine (DESIGN
	// §6.2), with a README of its own: only acme sees it.
	if err := w.st.(store.ReadmeStore).PutReadme(bg, &store.Readme{Digest: "sha256:quarantined", Found: true, Text: []byte("# QUARANTINED-README\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.UpsertVersion(bg, &store.Version{Tenant: "acme", Name: "acme/crm", Version: "2.0.0", Repository: "reg/pub/acme/crm", Digest: "sha256:quarantined",
		Kind: "Module", License: "MIT", Factory: ">=2.0.0", Visibility: store.Public, Stage: "public", Quarantined: true, IngestedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var anon, missing, public string
	err := chromedp.Run(ctx,
		chromedp.Navigate(w.url+"/extensions/acme/secret"),
		chromedp.Text("body", &anon, chromedp.ByQuery),
		chromedp.Navigate(w.url+"/extensions/acme/no-such-thing"),
		chromedp.Text("body", &missing, chromedp.ByQuery),
		chromedp.Navigate(w.url+"/extensions/acme/crm"),
		chromedp.Text("body", &public, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"TOP-SECRET-README", "secrets.write", "SECRET-AGREEMENT", "private description", "999"}
	for _, s := range secrets {
		if strings.Contains(anon, s) || strings.Contains(public, s) {
			t.Errorf("an anonymous browser sees %q of acme's private extension", s)
		}
	}
	if !strings.Contains(anon, "no extension acme/secret") || !strings.Contains(missing, "no extension acme/no-such-thing") {
		t.Errorf("anonymous page of the private extension %q, want the answer for a missing one (%q)", anon, missing)
	}
	for _, who := range []string{"", "globex"} {
		code, body := w.details(t, who, "acme/secret")
		if code != http.StatusNotFound || strings.Contains(body, "TOP-SECRET") || strings.Contains(body, "SECRET-AGREEMENT") {
			t.Errorf("details of acme/secret for %q: %d %s", who, code, body)
		}
	}
	// Quarantined: the anonymous page and details show 1.10.0, its README
	// and versions, never 2.0.0's; acme's own token sees 2.0.0.
	if strings.Contains(public, "QUARANTINED-README") || !strings.Contains(public, "CRM connector 1.10.0") {
		t.Errorf("the anonymous page of acme/crm shows its quarantined 2.0.0, or not 1.10.0's README")
	}
	if code, body := w.details(t, "globex", "acme/crm"); code != http.StatusOK || strings.Contains(body, "QUARANTINED") || strings.Contains(body, `"version":"2.0.0"`) {
		t.Errorf("globex's details of acme/crm show the quarantined version: %d", code)
	}
	if code, body := w.details(t, "acme", "acme/crm"); code != http.StatusOK || !strings.Contains(body, "QUARANTINED-README") {
		t.Errorf("acme's own details of acme/crm lack its quarantined 2.0.0's README: %d", code)
	}
	// Terms signed by a key the policy trusts, but not acme's: ignored,
	// and said so in the details.
	code, body := w.details(t, "", "acme/http")
	var http1 struct {
		Overview struct {
			Terms    *index.TermsView
			Problems []string
		}
	}
	if err := json.Unmarshal([]byte(body), &http1); err != nil || code != http.StatusOK || http1.Overview.Terms != nil ||
		len(http1.Overview.Problems) != 1 || !strings.Contains(http1.Overview.Problems[0], "not a key of the extension's publisher") {
		t.Errorf("acme/http's details with terms signed by another key: %d %+v %v", code, http1.Overview, err)
	}
	code, body = w.details(t, "acme", "acme/secret")
	if code != http.StatusOK || !strings.Contains(body, "TOP-SECRET-README") || !strings.Contains(body, "SECRET-AGREEMENT") || !strings.Contains(body, "secrets.write") {
		t.Errorf("acme's own private extension: %d %s", code, body)
	}
}

// TestExtensionPageCopyFallsBackOnPlainHTTPInChromium: on a plain-HTTP
// page of a host other than localhost the browser offers no clipboard
// (not a secure context): the copy button selects the command and says
// to copy it by hand. The host is a real name the browser resolves to
// the test server (a resolver rule), so the page is what a person on an
// http:// intranet index gets.
func TestExtensionPageCopyFallsBackOnPlainHTTPInChromium(t *testing.T) {
	w := newAPIWorld(t)
	port := w.srv.URL[strings.LastIndex(w.srv.URL, ":")+1:]
	ctx := browser(t, chromedp.Flag("host-resolver-rules", "MAP catalog.test 127.0.0.1"))
	var secure bool
	var status, selection, install string
	err := chromedp.Run(ctx,
		chromedp.Navigate("http://catalog.test:"+port+"/extensions/acme/public-crm"),
		chromedp.WaitVisible("#copy-install", chromedp.ByQuery),
		chromedp.Evaluate(`window.isSecureContext`, &secure),
		chromedp.Text("#install", &install, chromedp.ByQuery),
		chromedp.Click("#copy-install", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('copy-status').textContent.length > 0`, nil),
		chromedp.Text("#copy-status", &status, chromedp.ByQuery),
		chromedp.Evaluate(`window.getSelection().toString()`, &selection),
	)
	if err != nil {
		t.Fatal(err)
	}
	if secure {
		t.Fatal("http://catalog.test is a secure context: the test does not test the fallback")
	}
	if !strings.Contains(status, "plain-HTTP") || !strings.Contains(status, "selected") {
		t.Errorf("status after the click on plain HTTP: %q", status)
	}
	if strings.TrimSpace(selection) != strings.TrimSpace(install) || !strings.HasPrefix(install, "mkt install acme/public-crm@1.1.0") {
		t.Errorf("selection %q, want the install command %q", selection, install)
	}
}
