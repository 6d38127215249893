package index

import (
	"bytes"
	"regexp"
)

// Bounds on the Markdown given to goldmark. Its parser is quadratic in a
// line's length for some constructs ("[a](" repeated: 64 KB on one line
// took 4.5 s), in the block nesting one line opens ("- " repeated: 16 KB
// took 1 s, 240 KB more than ten minutes), and a GFM table pads every row
// to the header's columns (64 columns and 100,000 one-byte rows: 65 MB of
// HTML, 44 s). A README is the publisher's text, rendered when a page
// shows it, so each of these was a way to stall the index with one push.
// boundMarkdown rewrites only what no real README has; what is cut is
// still shown, as text.
const (
	// mdMaxLine is the longest line parsed as one: a longer one is broken
	// (at its last space before the bound when it has one), which in a
	// paragraph reads the same.
	mdMaxLine = 2048
	// mdMaxContainers is the most block quotes and list items one line may
	// open or continue by marker: a further marker is escaped, shown as
	// text.
	mdMaxContainers = 16
	// mdMaxIndent is the most leading whitespace (columns) a line keeps:
	// more only nests deeper than any real README.
	mdMaxIndent = 64
	// mdMaxTableColumns and mdMaxTableCells bound a table: a delimiter row
	// with more columns is escaped, and a table ends (a blank line is put
	// in) once its rows would make more cells.
	mdMaxTableColumns = 64
	mdMaxTableCells   = 20000
)

// tableDelimiter is a GFM table's delimiter row after any block quote
// markers: |---|:--:| or ---|---.
var tableDelimiter = regexp.MustCompile(`^[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$`)

// boundMarkdown applies the bounds above to src.
func boundMarkdown(src []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(src) + len(src)/64)
	rowsLeft := -1 // rows the current table may still have; -1 outside one
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		for len(line) > mdMaxLine {
			cut := bytes.LastIndexByte(line[:mdMaxLine], ' ')
			if cut <= 0 {
				cut = mdMaxLine
			}
			rowsLeft = writeMarkdownLine(&out, line[:cut], rowsLeft)
			line = line[cut:]
		}
		rowsLeft = writeMarkdownLine(&out, line, rowsLeft)
	}
	return out.Bytes()
}

// writeMarkdownLine writes one line of at most mdMaxLine bytes, bounded,
// and returns the rows its table may still have.
func writeMarkdownLine(out *bytes.Buffer, line []byte, rowsLeft int) int {
	body := bytes.TrimLeft(line, " \t>")
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		rowsLeft = -1 // a blank line ends any table
	case tableDelimiter.Match(body):
		cols := bytes.Count(bytes.Trim(bytes.TrimSpace(body), "|"), []byte("|")) + 1
		if cols > mdMaxTableColumns {
			line = escapeAt(line, len(line)-len(body))
			rowsLeft = -1
		} else {
			rowsLeft = mdMaxTableCells / cols
		}
	case rowsLeft == 0:
		out.WriteByte('\n') // ends the table: the rest reads as text
		rowsLeft = -1
	case rowsLeft > 0:
		rowsLeft--
	}
	out.Write(boundContainers(line))
	out.WriteByte('\n')
	return rowsLeft
}

// boundContainers caps the container markers and the indentation of one
// line (bounds above).
func boundContainers(line []byte) []byte {
	var out []byte // nil until something changes
	i, markers := 0, 0
	for i < len(line) {
		// leading whitespace, at most mdMaxIndent columns of it
		start, cols := i, 0
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			if line[i] == '\t' {
				cols += 4 - cols%4
			} else {
				cols++
			}
			i++
		}
		if cols > mdMaxIndent {
			out = append(append(append(out[:0:0], line[:start]...), bytes.Repeat([]byte(" "), mdMaxIndent)...), line[i:]...)
			return boundContainers(out)
		}
		n := containerMarker(line[i:])
		if n == 0 {
			break
		}
		if markers++; markers > mdMaxContainers {
			for line[i] >= '0' && line[i] <= '9' {
				i++ // 1. is escaped as 1\.
			}
			return escapeAt(line, i)
		}
		i += n
	}
	if out != nil {
		return out
	}
	return line
}

// containerMarker is the length of the block quote or list item marker
// at the start of s (with the space after it), 0 when there is none.
func containerMarker(s []byte) int {
	if len(s) == 0 {
		return 0
	}
	switch s[0] {
	case '>':
		return 1
	case '-', '+', '*':
		if len(s) > 1 && (s[1] == ' ' || s[1] == '\t') {
			return 2
		}
		return 0
	}
	d := 0
	for d < len(s) && d < 9 && s[d] >= '0' && s[d] <= '9' {
		d++
	}
	if d > 0 && d+1 < len(s) && (s[d] == '.' || s[d] == ')') && (s[d+1] == ' ' || s[d+1] == '\t') {
		return d + 2
	}
	return 0
}

// escapeAt puts a backslash before line[i], so that the character there
// is text, not syntax.
func escapeAt(line []byte, i int) []byte {
	out := make([]byte, 0, len(line)+1)
	return append(append(append(out, line[:i]...), '\\'), line[i:]...)
}
