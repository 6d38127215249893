package index_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/connectsoft/marketplace/index"
)

// TestRenderReadmeIsBoundedOnHostileMarkdown: Markdown that made goldmark
// quadratic, or a GFM table that pads every row to its header, must not
// stall a page: each README here (at most the 256 KiB the ingester keeps)
// renders in seconds and to bounded HTML. Before boundMarkdown, at load
// 16 on two cores: the nested list took more than ten minutes, "[a]("
// repeated 48 s, the 2,000-column table more than a minute and the
// 64-column, 100,000-row one 44 s and 65 MB of HTML.
func TestRenderReadmeIsBoundedOnHostileMarkdown(t *testing.T) {
	const kept = 256 << 10
	cases := map[string]string{
		"nested list items on one line":    strings.Repeat("- ", 120000) + "x",
		"nested ordered items on one line": strings.Repeat("1. ", 80000) + "x",
		"nested block quotes":              strings.Repeat(">", 200000) + " x",
		"nesting by indentation":           strings.Repeat(" ", 200000) + "- x\n",
		"unclosed link destinations":       strings.Repeat("[a](", 60000),
		"a table 2,000 columns wide":       strings.Repeat("|a", 2000) + "|\n" + strings.Repeat("|-", 2000) + "|\n" + strings.Repeat("b\n", 20000),
		"a table 100,000 rows long":        strings.Repeat("|a", 64) + "|\n" + strings.Repeat("|-", 64) + "|\n" + strings.Repeat("b\n", 100000),
		"a quoted table":                   "> " + strings.Repeat("|a", 64) + "|\n> " + strings.Repeat("|-", 64) + "|\n" + strings.Repeat("> b\n", 60000),
	}
	for name, src := range cases {
		if len(src) > kept {
			src = src[:kept]
		}
		done := make(chan int, 1)
		start := time.Now()
		go func() { done <- len(index.RenderReadme([]byte(src))) }()
		select {
		case n := <-done:
			t.Logf("%s: %d bytes of Markdown, %d of HTML, %v", name, len(src), n, time.Since(start))
			if n > 4*len(src)+4096 {
				t.Errorf("%s: %d bytes of Markdown rendered as %d bytes of HTML", name, len(src), n)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s: %d bytes of Markdown still rendering after 20 s", name, len(src))
		}
	}
}

// TestRenderReadmeBoundsKeepOrdinaryMarkdown: the bounds change nothing a
// real README uses: nested lists, quotes, tables, long paragraphs.
func TestRenderReadmeBoundsKeepOrdinaryMarkdown(t *testing.T) {
	long := strings.Repeat("word ", 1000) // 5,000 bytes on one line: broken at a space, one paragraph
	src := "# T\n\n- a\n  - b\n    - c\n\n> quote\n> > nested\n\n1. one\n2. two\n\n| x | y |\n|---|:-:|\n| 1 | 2 |\n\n" + long + "\n"
	out := string(index.RenderReadme([]byte(src)))
	for _, want := range []string{"<li>c</li>", "<blockquote>\n<p>nested</p>", "<ol>", "<td>1</td>", "<th style=\"text-align:center\">y</th>"} {
		if !strings.Contains(out, want) && !(strings.HasPrefix(want, "<th") && strings.Contains(out, "<th>y</th>")) {
			t.Errorf("rendered README lacks %s:\n%s", want, out)
		}
	}
	if strings.Count(out, "<p>word") != 1 || strings.Count(out, "word") != 1000 {
		t.Errorf("the long paragraph is not one paragraph of 1,000 words:\n%.400s", out)
	}
}

// TestReadmeCannotTakeAPageID: the README's ids get a prefix so that a
// README cannot take an id of the page; no page id may start with it.
// The extension page's own README heading and truncation note were
// readme-title and readme-note, which a README with id="title" or
// id="note" took as well (aria-labelledby and #readme-note then named
// two elements).
func TestReadmeCannotTakeAPageID(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("web", "templates", "*.html"))
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v %v", files, err)
	}
	idAttr := regexp.MustCompile(`\bid="([^"{]+)"`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range idAttr.FindAllStringSubmatch(string(b), -1) {
			pageID := m[1]
			for _, taken := range []string{pageID, strings.TrimPrefix(pageID, "readme-")} {
				out := string(index.RenderReadme([]byte(`<p id="` + taken + `">x</p>`)))
				if strings.Contains(out, `id="`+pageID+`"`) {
					t.Errorf("%s: a README with id=%q renders id=%q, an id of the page: %s", f, taken, pageID, out)
				}
			}
		}
	}
}
