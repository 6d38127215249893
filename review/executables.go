package review

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/connectsoft/marketplace/artifact"
)

// execKind is what makes a file executable code.
type execKind int

const (
	notExecutable execKind = iota
	// script: a shebang, a script extension (.sh, .ps1, .bat...) or the
	// executable mode bit on a text file.
	script
	// native: ELF, Mach-O or PE machine code.
	native
)

// Permissions that cover executables (spec.permissions). A native binary
// needs process.exec; a script needs shell.exec or process.exec.
const (
	PermissionProcessExec = "process.exec"
	PermissionShellExec   = "shell.exec"
)

// scriptExtensions are file name endings that shells and script hosts run.
var scriptExtensions = []string{".sh", ".bash", ".zsh", ".ksh", ".fish", ".ps1", ".psm1", ".psd1", ".bat", ".cmd", ".vbs", ".vbe", ".wsf", ".command", ".applescript"}

// nativeExtensions name machine code even when its magic is not at hand.
var nativeExtensions = []string{".exe", ".dll", ".so", ".dylib", ".msi", ".com", ".scr", ".sys"}

// magic numbers of executable formats, at offset 0.
var nativeMagic = []struct {
	format string
	magic  []byte
}{
	{"ELF", []byte{0x7f, 'E', 'L', 'F'}},
	{"Mach-O", []byte{0xfe, 0xed, 0xfa, 0xce}},
	{"Mach-O", []byte{0xfe, 0xed, 0xfa, 0xcf}},
	{"Mach-O", []byte{0xce, 0xfa, 0xed, 0xfe}},
	{"Mach-O", []byte{0xcf, 0xfa, 0xed, 0xfe}},
	{"Mach-O universal", []byte{0xca, 0xfe, 0xba, 0xbe}},
	{"PE", []byte{'M', 'Z'}},
}

// classify says what kind of executable a file is, from its mode, its
// name and the first bytes of its content.
func classify(f artifact.File, head []byte) execKind {
	if nativeFormat(head) != "" {
		return native
	}
	ext := strings.ToLower(path.Ext(f.Path))
	if slices.Contains(nativeExtensions, ext) {
		return native
	}
	if bytes.HasPrefix(head, []byte("#!")) || slices.Contains(scriptExtensions, ext) || f.Executable {
		return script
	}
	return notExecutable
}

// nativeFormat names the executable format head starts with, or "".
// "MZ" alone is two printable letters, so PE also needs its "PE\0\0"
// header where the DOS header points.
func nativeFormat(head []byte) string {
	for _, m := range nativeMagic {
		if !bytes.HasPrefix(head, m.magic) {
			continue
		}
		if m.format == "PE" {
			if len(head) < 0x40 {
				continue
			}
			off := int(uint32(head[0x3c]) | uint32(head[0x3d])<<8 | uint32(head[0x3e])<<16 | uint32(head[0x3f])<<24)
			if off < 0 || off+4 > len(head) || !bytes.Equal(head[off:off+4], []byte("PE\x00\x00")) {
				continue
			}
		}
		if m.format == "Mach-O universal" && len(head) >= 8 && head[4] == 0 && head[5] == 0 && head[6] == 0 && head[7] >= 0x2d {
			continue // a Java class file shares the magic; its next word is a version >= 45
		}
		return m.format
	}
	return ""
}

// executables lists every executable against spec.permissions: one not
// covered is a high finding (Factory would run code the listing never
// said it runs); a covered one is reported for the reviewer at info.
func (p *pass) executables() {
	var perms []string
	if p.ext != nil {
		perms = p.ext.Spec.Permissions
	}
	hasProc := slices.Contains(perms, PermissionProcessExec)
	hasShell := slices.Contains(perms, PermissionShellExec)
	for _, f := range p.files {
		switch f.exec {
		case native:
			if hasProc {
				p.add(CheckExecutables, Finding{Severity: Info, File: f.path, Message: "native executable, covered by " + PermissionProcessExec})
			} else {
				p.add(CheckExecutables, Finding{Severity: High, File: f.path, Message: fmt.Sprintf("native executable, but spec.permissions does not declare %s: declare it (and say why in the description) or remove the binary", PermissionProcessExec)})
			}
		case script:
			switch {
			case hasShell:
				p.add(CheckExecutables, Finding{Severity: Info, File: f.path, Message: "script, covered by " + PermissionShellExec})
			case hasProc:
				p.add(CheckExecutables, Finding{Severity: Info, File: f.path, Message: "script, covered by " + PermissionProcessExec})
			default:
				p.add(CheckExecutables, Finding{Severity: High, File: f.path, Message: fmt.Sprintf("script or executable file, but spec.permissions declares neither %s nor %s: declare %s or remove it (a file with the executable bit counts)", PermissionShellExec, PermissionProcessExec, PermissionShellExec)})
			}
		}
	}
}
