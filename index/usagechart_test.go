package index_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index/client"
	"github.com/connectsoft/marketplace/index/store"
	"github.com/connectsoft/marketplace/index/store/storetest"
	"golang.org/x/net/html"
)

// page gets an extension page with who's token ("" none) and parses it.
func (w *usageWorld) page(t *testing.T, who, path string) *html.Node {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.srv.URL+path, nil)
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+w.tokens[who])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s as %q: %d %s", path, who, resp.StatusCode, body)
	}
	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// find is the first element (depth first) for which match holds, or nil.
func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if n.Type == html.ElementNode && match(n) {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := find(c, match); f != nil {
			return f
		}
	}
	return nil
}

func byAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, key) == val }
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// The extension page draws the usage the token may see, by the same rule
// as GET /api/v1/usage: acme's publisher sees acme/crm's installs by every
// tenant, initech (another tenant) only its own and never acme's, globex
// none (so the page says so instead of drawing zeros), and an anonymous
// caller no usage at all. A day without usage is drawn as zero.
func TestExtensionPageChartsTheUsageTheTokenMaySee(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testExtensionPageChart(t, storetest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { testExtensionPageChart(t, storetest.Postgres(t)) })
}

func testExtensionPageChart(t *testing.T, st store.Store) {
	w := newUsageWorld(t, st)
	now := time.Now().UTC()
	day := func(ago int) string { return now.AddDate(0, 0, -ago).Format(time.DateOnly) }
	at := func(ago int) string { return now.AddDate(0, 0, -ago).Truncate(time.Hour).Format(time.RFC3339) }
	report := func(who, id string, ago int) {
		e := install(id, "1.0.0")
		e["time"] = at(ago)
		if code, out := w.post(t, who, "application/cloudevents+json", e); code >= 300 {
			t.Fatalf("report %s as %s: %d %v", id, who, code, out)
		}
	}
	report("acme", "a1", 3)
	report("acme", "a2", 3)
	report("acme", "a3", 1)
	report("initech", "i1", 3)
	report("initech", "i2", 20)
	// The API agrees on what each sees (the page must not show more).
	if rows := w.usage(t, "initech", client.UsageQuery{From: day(89)}); len(rows) != 2 {
		t.Fatalf("initech's API rows: %+v", rows)
	}

	pub := w.page(t, "acme-publisher", "/extensions/acme/crm")
	if got := text(find(pub, byAttr("id", "usage-installs"))); got != "5" {
		t.Errorf("acme's publisher sees %q installs, want 5 (by every tenant)", got)
	}
	svg := find(pub, func(n *html.Node) bool { return n.Data == "svg" })
	if svg == nil || attr(svg, "role") != "img" {
		t.Fatalf("no chart (svg role=img) for the publisher")
	}
	title := text(find(svg, func(n *html.Node) bool { return n.Data == "title" }))
	if !strings.Contains(title, "5 installs in total") || !strings.Contains(title, "busiest day was "+day(3)+" with 0 pulls and 3 installs") {
		t.Errorf("chart title %q does not say the numbers", title)
	}
	busy := find(svg, byAttr("data-day", day(3)))
	if busy == nil || attr(busy, "data-installs") != "3" {
		t.Fatalf("day %s: %v", day(3), busy)
	}
	bar := find(busy, byAttr("class", "installs"))
	if h := attr(bar, "height"); h == "0" || h == "" {
		t.Errorf("the busiest day's bar has height %q", h)
	}
	idle := find(svg, byAttr("data-day", day(2)))
	if idle == nil || attr(idle, "data-installs") != "0" || attr(idle, "data-pulls") != "0" {
		t.Fatalf("a day without usage (%s) is not drawn as zero: %v", day(2), idle)
	}
	for _, class := range []string{"pulls", "installs"} {
		if h := attr(find(idle, byAttr("class", class)), "height"); h != "0" {
			t.Errorf("the idle day's %s bar has height %q, want 0", class, h)
		}
	}
	if n := strings.Count(text(find(pub, byAttr("id", "usage-table"))), day(3)); n != 1 {
		t.Errorf("the screen-reader table lists %s %d times", day(3), n)
	}

	// Tenant B (initech) sees its own 2 installs, never acme's 3.
	other := w.page(t, "initech", "/extensions/acme/crm")
	if got := text(find(other, byAttr("id", "usage-installs"))); got != "2" {
		t.Errorf("initech sees %q installs, want its own 2", got)
	}
	if d := find(other, byAttr("data-day", day(1))); d == nil || attr(d, "data-installs") != "0" {
		t.Errorf("initech sees acme's install of %s: %v", day(1), d)
	}
	if d := find(other, byAttr("data-day", day(3))); d == nil || attr(d, "data-installs") != "1" {
		t.Errorf("initech's %s should count its own 1 install only: %v", day(3), d)
	}

	none := w.page(t, "globex", "/extensions/acme/crm")
	if find(none, func(n *html.Node) bool { return n.Data == "svg" }) != nil || find(none, byAttr("data-usage", "none")) == nil {
		t.Errorf("globex, with no usage it may see, should get a sentence, not a chart")
	}
	anon := w.page(t, "", "/extensions/acme/crm")
	if find(anon, func(n *html.Node) bool { return n.Data == "svg" }) != nil || find(anon, byAttr("data-usage", "hidden")) == nil {
		t.Errorf("an anonymous caller should see no usage")
	}
	if strings.Contains(text(anon), "5") && find(anon, byAttr("id", "usage-installs")) != nil {
		t.Errorf("an anonymous caller sees totals")
	}
}
