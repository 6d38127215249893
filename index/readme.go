package index

import (
	"bytes"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// README rendering for the extension page (issue 14). The ingester stores
// the README's source (the first 256 KiB, store.ReadmeStore); it is
// rendered when a page shows it, so that a fix to the renderer or the
// sanitiser applies to every README at once, with no re-ingest:
//
//  1. goldmark turns the Markdown (GitHub-flavoured: tables, task lists,
//     strikethrough, autolinks) into HTML, raw HTML in it included;
//  2. bluemonday's UGC policy keeps only inert HTML: no script, style,
//     iframe, object or form, no event handler (onerror=) or style
//     attribute, links and images only to http, https and mailto URLs
//     or relative ones (javascript: and data: are dropped);
//  3. a last pass over the result (inert) makes it fit the page:
//     - images are never loaded (the page's CSP allows images from the
//       index only, and the index does not serve an extension's files):
//       an absolute http(s) image becomes a link to it named by its alt
//       text, any other one its alt text in brackets;
//     - a relative link (docs/guide.md) would name a page of the index,
//       not a file of the extension: it is shown as its text, unlinked;
//       in-page links (#usage) keep working;
//     - ids and names get the prefix "readme-" (and in-page links with
//       them), so a README cannot take an id the page itself uses
//       (#install, which the copy button reads); no id of the page starts with
//       the prefix (TestReadmeCannotTakeAPageID).
//
// Absolute links get rel="nofollow noopener noreferrer".

// readmeRenderer is goldmark with GFM and raw HTML passed through: it is
// the sanitiser that decides what HTML stays, not the Markdown parser, so
// that README HTML people commonly use (details, tables, kbd) survives.
var readmeRenderer = goldmark.New(
	goldmark.WithExtensions(extension.GFM),
	goldmark.WithRendererOptions(gmhtml.WithUnsafe()),
)

// readmePolicy is bluemonday's policy for user-generated content, made
// once: a policy is safe for concurrent use once built.
var readmePolicy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(false)
	return p
})

// readmeIDPrefix is put before every id and name a README sets.
const readmeIDPrefix = "readme-"

// RenderReadme renders README source text as HTML that is safe to put in
// a page as it is (steps above). Text that is not UTF-8 is mended first.
// It never fails: Markdown has no syntax errors, and what cannot be
// rendered is left out.
func RenderReadme(src []byte) template.HTML {
	src = []byte(strings.ToValidUTF8(strings.ReplaceAll(string(src), "\x00", "\uFFFD"), "\uFFFD"))
	src = boundMarkdown(src)
	var md bytes.Buffer
	if err := readmeRenderer.Convert(src, &md); err != nil {
		return template.HTML("<p>" + template.HTMLEscapeString(fmt.Sprintf("The README could not be rendered: %v", err)) + "</p>")
	}
	clean := readmePolicy().SanitizeBytes(md.Bytes())
	return template.HTML(fitReadme(clean))
}

// fitReadme is step 3 over sanitised HTML.
func fitReadme(clean []byte) string {
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(bytes.NewReader(clean), ctx)
	if err != nil {
		return "" // the sanitiser's output is HTML; nothing shown rather than anything unchecked
	}
	root := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	for _, n := range nodes {
		root.AppendChild(n)
	}
	fitNode(root)
	var out bytes.Buffer
	for n := root.FirstChild; n != nil; n = n.NextSibling {
		if err := html.Render(&out, n); err != nil {
			return ""
		}
	}
	return out.String()
}

func fitNode(n *html.Node) {
	for c := n.FirstChild; c != nil; {
		next := c.NextSibling
		fitNode(c)
		c = next
	}
	if n.Type != html.ElementNode {
		return
	}
	attrs := n.Attr[:0]
	for _, a := range n.Attr {
		switch a.Key {
		case "id", "name":
			a.Val = readmeIDPrefix + a.Val
		case "href":
			if frag, ok := strings.CutPrefix(a.Val, "#"); ok && frag != "" {
				a.Val = "#" + readmeIDPrefix + frag
			} else if !absoluteURL(a.Val) {
				continue // relative: dropped below
			}
		}
		attrs = append(attrs, a)
	}
	n.Attr = attrs
	switch n.DataAtom {
	case atom.A:
		if htmlAttr(n, "href") == "" {
			var keep []html.Attribute // an anchor's target stays one
			if id := htmlAttr(n, "id"); id != "" {
				keep = append(keep, html.Attribute{Key: "id", Val: id})
			}
			n.Data, n.DataAtom, n.Attr = "span", atom.Span, keep
		}
	case atom.Img:
		replaceImage(n)
	}
}

// replaceImage turns an img into a link to it, or its alt text.
func replaceImage(n *html.Node) {
	alt := htmlAttr(n, "alt")
	src := htmlAttr(n, "src")
	label := "image"
	if alt != "" {
		label = "image: " + alt
	}
	text := &html.Node{Type: html.TextNode, Data: "[" + label + "]"}
	if absoluteURL(src) && n.Parent != nil && !insideLink(n) {
		a := &html.Node{Type: html.ElementNode, Data: "a", DataAtom: atom.A, Attr: []html.Attribute{
			{Key: "href", Val: src}, {Key: "rel", Val: "nofollow noopener noreferrer"}, {Key: "class", Val: "readme-image"}}}
		a.AppendChild(text)
		n.Parent.InsertBefore(a, n)
		n.Parent.RemoveChild(n)
		return
	}
	if n.Parent != nil {
		n.Parent.InsertBefore(text, n)
		n.Parent.RemoveChild(n)
	}
}

func insideLink(n *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.DataAtom == atom.A {
			return true
		}
	}
	return false
}

// absoluteURL is an http, https or mailto URL (the sanitiser allows no
// other scheme, this checks again).
func absoluteURL(s string) bool {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "mailto":
		return true
	}
	return false
}

func htmlAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
