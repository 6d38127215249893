package artifact_test

import (
	"testing"
	"unicode/utf8"

	"github.com/connectsoft/marketplace/artifact"
)

func TestPrintableEscapesTerminalControls(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Salesforce connector — CRM ✔", "Salesforce connector — CRM ✔"},
		{"\x1b[32m✔ verified\x1b[0m\r", `\x1b[32m✔ verified\x1b[0m\r`},
		{"bell\a tab\t line\nnext", `bell\x07 tab\t line\nnext`},
		{"del\x7f nul\x00", `del\x7f nul\x00`},
		{"c1 csi \u009b31m", `c1 csi \u009b31m`},
		{"bidi \u202eevil\u2066", `bidi \u202eevil\u2066`},
		{"raw 8-bit csi \x9b31m", `raw 8-bit csi \x9b31m`},
	}
	for _, tc := range cases {
		if got := artifact.Printable(tc.in); got != tc.want {
			t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzPrintable(f *testing.F) {
	f.Add("\x1b[32m✔ verified\x1b[0m\r")
	f.Add("plain text")
	f.Fuzz(func(t *testing.T, s string) {
		out := artifact.Printable(s)
		for _, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("Printable(%q) = %q still holds %U", s, out, r)
			}
		}
		if !utf8.ValidString(out) {
			t.Fatalf("Printable(%q) = %q is not UTF-8", s, out)
		}
	})
}
