package review

import (
	"bytes"
	"regexp/syntax"
)

// genericRuleID is gitleaks' catch-all rule: a keyword (key, token,
// secret, password...), an assignment, and a long value. Its expression is
// the costliest of the rule set on Go's regexp (about 1 MB/s), and its
// keywords are in most source lines that name a credential, so the lines
// around its keywords are not few enough: genericCandidates narrows them
// to the lines that can hold a match.
const genericRuleID = "generic-api-key"

// genericPattern is the expression of gitleaks v8.30's generic-api-key rule
// that genericCandidates was derived from. A gitleaks whose rule says
// anything else runs the rule with the others (keyword windows), so an
// upgrade can slow the scan down but not make it miss a secret.
const genericPattern = `(?i)[\w.-]{0,50}?(?:access|auth|(?-i:[Aa]pi|API)|credential|creds|key|passw(?:or)?d|secret|token)(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)[\x60'"\s=]{0,5}([\w.=-]{10,150}|[a-z0-9][a-z0-9+/]{11,}={0,3})(?:[\x60'"\s;]|\\[nr]|$)`

// genericKeywords are the rule's keywords: exactly the words its
// expression's keyword group matches, in lower case ("api" stands for
// [Aa]pi and API, a superset).
var genericKeywords = []string{"access", "api", "auth", "credential", "creds", "key", "passwd", "password", "secret", "token"}

// Byte classes of genericPattern on ASCII-lowered text (Go's \w and \s are
// ASCII: [0-9A-Za-z_] and [\t\n\f\r ]; the runes that fold to ASCII
// letters, K and ſ, send a piece to the plain scan, see foldsToASCII).
const (
	clsGap   = 1 << iota // [ \t\w.-]: between the keyword and the quotes
	clsQuote             // [\s'"]: before the operator
	clsOp                // the first byte of an operator: = > : | ? ,
	clsAfter             // [\x60'"\s=] and the rest of an operator (: = > |)
)

var genericClass = func() (t [256]uint8) {
	word := func(c int) bool { return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' }
	space := func(c int) bool { return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ' }
	for c := range 256 {
		if c == ' ' || c == '\t' || word(c) || c == '.' || c == '-' {
			t[c] |= clsGap
		}
		if space(c) || c == '\'' || c == '"' {
			t[c] |= clsQuote
		}
		switch c {
		case '=', '>', ':', '|', '?', ',':
			t[c] |= clsOp
		}
		if c == '`' || c == '\'' || c == '"' || space(c) || c == '=' || c == ':' || c == '>' || c == '|' {
			t[c] |= clsAfter
		}
	}
	return t
}()

// Bounds of genericPattern: at most 20 gap and 3 quote bytes between the
// keyword and the operator; an operator of at most 4 bytes (":::=") and
// then at most 5 quotes, spaces or '='; a value of at least 10 bytes.
const (
	genericMaxToOp    = 20 + 3
	genericMaxAfterOp = 3 + 5 // the operator's other bytes, then the quotes
	genericMinSecret  = 10
)

// genericCandidate says whether a match of genericPattern can use the
// keyword that ends at end of lower (data in ASCII lower case), and if so
// the last offset its value can start at. It is a necessary condition, not
// the expression: after the keyword, up to 23 bytes of [ \t\w.-'"\s], then
// an operator byte, then up to 8 bytes of the operator's rest, quotes,
// spaces or '=', then a value (genericValue). Every match passes it
// (FuzzSecretScan holds the scanner to gitleaks' findings); the keyword
// lines of most source code do not ("token := os.Getenv(...)" has no
// value followed by a quote, a space or the line's end).
func genericCandidate(lower []byte, end int) (lastValue int, ok bool) {
	n := len(lower)
	p := end
	for p < n && p-end <= genericMaxToOp && genericClass[lower[p]]&(clsGap|clsQuote) != 0 {
		p++
	}
	// The operator's first byte is in neither class: only the first byte
	// past the run can be it.
	if p >= n || p-end > genericMaxToOp || genericClass[lower[p]]&clsOp == 0 {
		return 0, false
	}
	lastValue = -1
	for s := p + 1; s <= p+1+genericMaxAfterOp && s < n; s++ {
		if genericValue(lower, s) {
			lastValue = s
		}
		if genericClass[lower[s]]&clsAfter == 0 {
			break // only operator bytes, quotes, spaces and '=' come before the value
		}
	}
	return lastValue, lastValue >= 0
}

// genericValue says whether the value group of genericPattern and the
// terminator after it can match at s:
//
//   - [\w.=-]{10,150}: a run of that class cannot stop short of its end,
//     since no byte of the class is a terminator, so the whole run, 10 to
//     150 bytes, then a terminator;
//   - [a-z0-9][a-z0-9+/]{11,}={0,3}: likewise the whole run of
//     [a-z0-9+/], 12 bytes or more, then all the '=' after it, at most 3,
//     then a terminator.
//
// A terminator is [\x60'"\s;], a backslash (\\[nr], loosely) or the end.
func genericValue(lower []byte, s int) bool {
	n := len(lower)
	terminates := func(i int) bool {
		if i >= n {
			return true
		}
		switch lower[i] {
		case '`', '\'', '"', ';', '\\', '\t', '\n', '\f', '\r', ' ':
			return true
		}
		return false
	}
	i := s
	for i < n && i-s <= 150 && (isWord(lower[i]) || lower[i] == '.' || lower[i] == '=' || lower[i] == '-') {
		i++
	}
	if l := i - s; l >= genericMinSecret && l <= 150 && terminates(i) {
		return true
	}
	if s >= n || !(alnum(lower[s])) {
		return false
	}
	i = s
	for i < n && (alnum(lower[i]) || lower[i] == '+' || lower[i] == '/') {
		i++
	}
	if i-s < 12 {
		return false
	}
	eq := 0
	for i < n && lower[i] == '=' {
		i++
		eq++
	}
	return eq <= 3 && terminates(i)
}

func isWord(c byte) bool { return c == '_' || alnum(c) }

// foldsToASCII says whether data holds a rune that Go's case-insensitive
// matching or strings.ToLower equates with an ASCII letter: K (U+212A,
// Kelvin) and ſ (U+017F, long s) match k and s under (?i), and İ (U+0130)
// lowers to i in gitleaks' keyword prefilter. The keyword windows work on
// ASCII-lowered bytes, so a piece with one of them is scanned whole, as
// gitleaks would (TestFoldsToASCIIIsComplete checks that these are all).
func foldsToASCII(data []byte) bool {
	return bytes.Contains(data, []byte("\u212a")) || bytes.Contains(data, []byte("\u017f")) || bytes.Contains(data, []byte("\u0130"))
}

// maxNewlines is the most newlines a match of the expression can span, or
// -1 when there is no bound.
func maxNewlines(expr string) int {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return -1
	}
	var walk func(re *syntax.Regexp) int
	walk = func(re *syntax.Regexp) int {
		switch re.Op {
		case syntax.OpLiteral:
			n := 0
			for _, r := range re.Rune {
				if r == '\n' {
					n++
				}
			}
			return n
		case syntax.OpCharClass:
			for i := 0; i+1 < len(re.Rune); i += 2 {
				if re.Rune[i] <= '\n' && '\n' <= re.Rune[i+1] {
					return 1
				}
			}
			return 0
		case syntax.OpAnyChar:
			return 1
		case syntax.OpCapture, syntax.OpQuest:
			return walk(re.Sub[0])
		case syntax.OpStar, syntax.OpPlus:
			if walk(re.Sub[0]) != 0 {
				return -1
			}
			return 0
		case syntax.OpRepeat:
			m := walk(re.Sub[0])
			if m == 0 {
				return 0
			}
			if m < 0 || re.Max < 0 {
				return -1
			}
			return m * re.Max
		case syntax.OpConcat, syntax.OpAlternate:
			t := 0
			for _, sub := range re.Sub {
				m := walk(sub)
				if m < 0 {
					return -1
				}
				if re.Op == syntax.OpConcat {
					t += m
				} else {
					t = max(t, m)
				}
			}
			return t
		}
		return 0 // empty, anchors, assertions, any char but newline
	}
	return walk(re)
}
