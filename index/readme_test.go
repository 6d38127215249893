package index_test

import (
	"strings"
	"testing"

	"github.com/connectsoft/marketplace/index"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// inertProblem returns what in rendered README HTML could run, frame or
// load anything, or take an id of the page; "" when nothing does.
func inertProblem(rendered string) string {
	nodes, err := html.ParseFragment(strings.NewReader(rendered), &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div})
	if err != nil {
		return "does not parse: " + err.Error()
	}
	var problem string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "iframe", "frame", "object", "embed", "img", "style", "link", "meta", "base", "form", "input",
				"button", "svg", "math", "video", "audio", "source", "picture", "template":
				problem = "element " + n.Data
			}
			for _, a := range n.Attr {
				key, val := strings.ToLower(a.Key), strings.ToLower(strings.TrimSpace(a.Val))
				switch {
				case strings.HasPrefix(key, "on"), key == "style", key == "srcdoc", key == "src", key == "action", key == "formaction":
					problem = "attribute " + a.Key + " on " + n.Data
				case key == "href" && !strings.HasPrefix(val, "#") && !strings.HasPrefix(val, "http://") &&
					!strings.HasPrefix(val, "https://") && !strings.HasPrefix(val, "mailto:"):
					problem = "href " + a.Val
				case (key == "id" || key == "name") && !strings.HasPrefix(a.Val, "readme-"):
					problem = "unprefixed " + key + " " + a.Val
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	for _, n := range nodes {
		walk(n)
	}
	return problem
}

// hostileReadme is everything a README might try: script, event handlers,
// javascript: and data: links, frames, forms, styles, images from
// elsewhere, relative URLs into the index and ids of the page.
const hostileReadme = "# Hostile\n\n<script>window.__pwned = 'script'</script>\n\n" +
	"<img src=x onerror=\"window.__pwned = 'onerror'\">\n\n" +
	"[js](javascript:window.__pwned='link') [JS](JaVaScRiPt:window.__pwned='LINK') [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n" +
	"<a href=\"javascript:window.__pwned='raw'\" id=\"evil-link\">raw link</a>\n\n" +
	"<iframe src=\"javascript:parent.__pwned='iframe'\"></iframe>\n\n<iframe srcdoc=\"<script>parent.__pwned='srcdoc'</script>\"></iframe>\n\n" +
	"<details open ontoggle=\"window.__pwned='ontoggle'\"><summary>more</summary>hidden</details>\n\n" +
	"<svg onload=\"window.__pwned='svg'\"><script>window.__pwned='svgscript'</script></svg>\n\n" +
	"<form action=\"/api/v1/usage/events\" method=\"post\"><button>send</button></form>\n\n" +
	"<style>body { display: none }</style><div style=\"position:fixed;inset:0\">overlay</div>\n\n" +
	"![tracker](https://tracker.example/pixel.png) ![local](/api/v1/alerts) ![relative](docs/shot.png)\n\n" +
	"[guide](docs/guide.md) [api](/api/v1/alerts) [proto](//evil.example/x) [ok](https://example.com/docs) [top](#hostile)\n\n" +
	"<a id=\"install\" name=\"copy-install\">clobber</a>\n"

func TestRenderReadmeKeepsNothingThatRuns(t *testing.T) {
	out := string(index.RenderReadme([]byte(hostileReadme)))
	if p := inertProblem(out); p != "" {
		t.Fatalf("rendered README keeps %s:\n%s", p, out)
	}
	for _, want := range []string{"<h1>Hostile</h1>", `href="https://example.com/docs"`, `href="#readme-hostile"`,
		`href="https://tracker.example/pixel.png"`, "[image: tracker]", "[image: local]", "<span>guide</span>", "<span>api</span>", `id="readme-install"`} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered README lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "__pwned") && strings.Contains(out, "<script") {
		t.Errorf("a script survived:\n%s", out)
	}
}

func FuzzRenderReadme(f *testing.F) {
	for _, s := range []string{hostileReadme, "# t\n\n| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | [x](javascript:1) |\n",
		"<a href=\"&#106;avascript:alert(1)\">x</a>", "[x](<javascript:alert(1)>)", "<a href=\"java\tscript:1\">t</a>",
		"~~~\n<script>\n~~~\n", "* [ ] task\n* [x] <b onclick=x>done</b>", "<p id=install name=x>p</p>", "\x00\xff<scr\x00ipt>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 64<<10 {
			return
		}
		out := string(index.RenderReadme(src))
		if p := inertProblem(out); p != "" {
			t.Fatalf("rendered %q keeps %s:\n%s", src, p, out)
		}
	})
}

// BenchmarkRenderReadme renders the largest README the index keeps (256
// KiB of mixed Markdown: headings, lists, code, tables, links, HTML): what
// the first view of an extension page pays before the rendered README is
// cached.
func BenchmarkRenderReadme(b *testing.B) {
	chunk := "## Section\n\nSome *text* with `code`, a [link](https://example.com) and <kbd>Ctrl</kbd>.\n\n" +
		"- item one\n- item two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```go\nfunc main() {}\n```\n\n"
	src := []byte(strings.Repeat(chunk, (256<<10)/len(chunk)))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		index.RenderReadme(src)
	}
}
