package artifact

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Printable returns s with everything a terminal would act on instead of
// showing made visible as an escape: C0 controls (ESC, BEL, CR, LF, TAB...)
// and DEL as \x1b, \r, \n, \t; C1 controls (U+0080–U+009F, CSI among them)
// and the bidirectional controls that reorder what is shown as \u009b;
// bytes that are not UTF-8 as \xff. Titles, descriptions, annotations and
// attestation fields are written by whoever pushed them: printed raw, an
// escape sequence in a title can draw a fake "✔ verified" line or erase
// the real one. Everything mkt prints from an artifact goes through here.
func Printable(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r < 0x20 || r == 0x7f || unsafeRune(r) {
			return true
		}
		i += size
	}
	return false
}

// unsafeRune: C1 controls, and the bidirectional marks, embeddings,
// overrides and isolates ("Trojan Source").
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || r == 0x061c || r == 0x200e || r == 0x200f ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}
