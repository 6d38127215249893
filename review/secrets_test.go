package review

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/zricethezav/gitleaks/v8/detect"
)

// plainFindings are what gitleaks' detector, with every rule, finds in
// data read whole as one fragment: what the scanner's windows and
// prefilters must reproduce, as "rule:line" sorted and without repeats.
func plainFindings(t testing.TB, s *secretScanner, path string, data []byte) []string {
	t.Helper()
	var out []string
	//lint:ignore SA1019 DetectContext takes this type until gitleaks v9
	for _, f := range s.d.DetectContext(context.Background(), detect.Fragment{Raw: string(data), FilePath: path}) {
		out = append(out, fmt.Sprintf("%s:%d", f.RuleID, 1+f.StartLine))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func scannedFindings(s *secretScanner, path string, data []byte) []string {
	var out []string
	for _, f := range s.scan(context.Background(), path, data, 1) {
		out = append(out, fmt.Sprintf("%s:%d", f.Rule, f.Line))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// secretSeeds are lines gitleaks' rules find, and near misses: the generic
// rule's assignments in several languages, spread over lines, behind
// quotes; a JWT, AWS and GitHub keys, a private key, a Kubernetes Secret;
// and the runes that fold to ASCII letters.
var secretSeeds = []string{
	"api_key = \"a8Fk29dLq03mZx7Pw\"\n",
	"\tapiKey := cfg.Lookup(\"api_key\")\n\ttoken := os.Getenv(\"CRM_TOKEN\")\n",
	"password: hunter2hunter2Xq9\n",
	"PASSWORD=Zq8vLm2Xp4Rt7Wn1\nSECRET_KEY=Kd93mQ7zLp2Xv8Nc\n",
	"my_secret_token  '\" => `aZ9xQ2mL7pW3vK8r` ;\n",
	"password\n\n\n=\n\n\n'Qw8eRt5yUi2oPa7s'\n",
	"auth ||\tXk29Lm38Qp47Zv56\n",
	"creds ?= bmV2ZXIgZ29ubmEgZ2l2ZQ==\n",
	"key:::=Abc123Def456Ghi789\\n",
	"access,\"9f8e7d6c5b4a3f2e1d0c\"",
	"to\u212aen = Xy7Zq3Lp9Wm2Vn6Kr5\n",
	"token\n\u017fecret = Xy7Zq3Lp9Wm2Vn6Kr5\n",
	"credent\u0130al = Xy7Zq3Lp9Wm2Vn6Kr5\n",
	"aws_access_key_id = AKIAZ3MSJV4WHZG6XQ5A\n",
	"jwt: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n",
	"GITHUB_TOKEN=ghp_R2mX8vQ4zL7pW1nK5sT9yB3cF6hJ0dG2aE4u\n",
	"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1Xv3rA8vK2LmQ9pZ7wXyN3bR5tC1dE6fG8hJ0kL2mN4oP6qS\nrT8uV0wX2yZ4aB6cD8eF0gH2iJ4kL6mN8oP0qR2sT4uV6wX8yZ0aB2cD4eF6gH8i\n-----END RSA PRIVATE KEY-----\n",
	"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: cGFzc3dvcmQxMjM0NTY3OA==\n",
	"resource \"azurerm_sql_server\" \"x\" {\n  administrator_login_password = \"Zq8vLm2Xp4Rt7W\"\n}\n",
	"slack = \"xoxb-123456789012-123456789012-aB3dE5gH7jK9mN1pQ3sT5vX7\"\n",
	"// the password is never logged\n\tsecret := vault.Read(ctx, \"crm/secret\")\n",
}

// FuzzSecretScan holds the scanner, with its keyword windows and its
// generic-api-key prefilter, to find exactly what gitleaks finds reading
// the same text whole: the same rules on the same lines.
func FuzzSecretScan(f *testing.F) {
	for _, s := range secretSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(strings.Join(secretSeeds, "")))
	s, err := defaultSecretScanner()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		got, want := scannedFindings(s, "src/a.go", data), plainFindings(t, s, "src/a.go", data)
		if !slices.Equal(got, want) {
			t.Fatalf("scanner found %v, gitleaks reading the text whole %v, in:\n%q", got, want, data)
		}
	})
}

// On real text (gitleaks' own test repositories, which hold secrets, and
// Go's TLS, X.509 and HTTP sources, which name keys, tokens and passwords
// on many lines) the scanner finds what gitleaks finds reading each file
// whole; and the bench's keyword-dense source, with secrets added.
func TestSecretScanFindsWhatGitleaksFindsOnRealText(t *testing.T) {
	s, err := defaultSecretScanner()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/zricethezav/gitleaks/v8").Output()
	if err != nil {
		t.Fatalf("locate gitleaks' module: %v", err)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	gl, gr := strings.TrimSpace(string(out)), strings.TrimSpace(string(goroot))
	roots := []string{filepath.Join(gl, "testdata", "repos", "nogit"), filepath.Join(gl, "testdata", "repos", "small"),
		filepath.Join(gl, "testdata", "config"), filepath.Join(gr, "src", "crypto", "tls"), filepath.Join(gr, "src", "net", "smtp"),
		filepath.Join(gr, "src", "net", "url"), filepath.Join(gr, "src", "encoding", "pem")}
	files, bytesRead, withFindings := 0, 0, 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if !isText(data) || len(data) > 256<<10 {
				return nil
			}
			rel := strings.TrimPrefix(p, root)
			got, want := scannedFindings(s, rel, data), plainFindings(t, s, rel, data)
			if !slices.Equal(got, want) {
				t.Errorf("%s: scanner found %v, gitleaks reading it whole %v", p, got, want)
			}
			files++
			bytesRead += len(data)
			if len(want) > 0 {
				withFindings++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files < 50 || withFindings < 5 {
		t.Fatalf("only %d files (%d with findings) compared: the corpus is not what this test expects", files, withFindings)
	}
	t.Logf("%d files, %d bytes, %d with findings: the same findings", files, bytesRead, withFindings)
}

// The pinned generic-api-key expression is gitleaks' (else the prefilter
// is off and every rule runs on keyword windows: slower, not blind), its
// keywords are the expression's keyword group, and the keyword conditions
// of jwt and vault-service-token are in use.
func TestGenericPrefilterMatchesGitleaksRule(t *testing.T) {
	s, err := defaultSecretScanner()
	if err != nil {
		t.Fatal(err)
	}
	if s.generic == nil {
		t.Fatalf("gitleaks' %s rule is not the expression the prefilter was derived from:\n%s\nre-derive genericCandidate from the new one and update genericPattern", genericRuleID, s.d.Config.Rules[genericRuleID].Regex)
	}
	if _, ok := s.rest.Config.Rules[genericRuleID]; ok {
		t.Fatal("the generic rule runs twice: in the windows of every rule and in its own")
	}
	if len(s.rest.Config.Rules)+1 != len(s.d.Config.Rules) {
		t.Fatalf("rest holds %d rules of %d", len(s.rest.Config.Rules), len(s.d.Config.Rules))
	}
	for id, h := range hitConditions {
		conditioned := false
		for _, rs := range s.restKeyword {
			for _, r := range rs {
				conditioned = conditioned || r.cond != nil && reflect.ValueOf(r.cond).Pointer() == reflect.ValueOf(h.cond).Pointer()
			}
		}
		if !conditioned {
			t.Errorf("rule %s's expression is no longer the one its keyword condition was derived from:\n%s", id, s.d.Config.Rules[id].Regex)
		}
	}
	group := regexp.MustCompile(`\(\?:(access\|auth.*?token)\)`).FindStringSubmatch(genericPattern)
	words := strings.NewReplacer("(?-i:[Aa]pi|API)", "api", "passw(?:or)?d", "passwd|password").Replace(group[1])
	if !sameWords(strings.Split(words, "|"), genericKeywords) {
		t.Fatalf("keyword group %s is not the keywords %v", group[1], genericKeywords)
	}
}

// A prefilter that is wrong either way is caught: a line that matches
// passes it, and the keyword lines of ordinary code do not.
func TestGenericCandidate(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{`api_key = "a8Fk29dLq03mZx7Pw"`, true},
		{"password\n\n\n=\n\n\n'Qw8eRt5yUi2oPa7s'", true},
		{"key:::=    'Abc123Def4'", true},
		{`auth || Xk29Lm38Qp47Zv56`, true},
		{`token := os.Getenv("CRM_TOKEN")`, false},
		{`// the password is never logged`, false},
		{`key = short`, false},
		{`key . . . . . . . . . . . . = abcdefghijkl`, false}, // 24 bytes before the operator
	} {
		lower := bytes.ToLower([]byte(c.line))
		kw := regexp.MustCompile(`access|api|auth|credential|creds|key|passwd|password|secret|token`).FindIndex(lower)
		_, ok := genericCandidate(lower, kw[1])
		if ok != c.ok {
			t.Errorf("%q: candidate %v, want %v", c.line, ok, c.ok)
		}
		if m := regexp.MustCompile(genericPattern).MatchString(c.line); m && !ok {
			t.Errorf("%q matches the rule but the prefilter drops it", c.line)
		}
	}
}

// foldsToASCII knows every rune that Go's case folding or lowering
// equates with an ASCII byte.
func TestFoldsToASCIIIsComplete(t *testing.T) {
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		folds := unicode.ToLower(r) < 0x80
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			folds = folds || f < 0x80
		}
		if folds != foldsToASCII([]byte("x"+string(r)+"y")) {
			t.Errorf("%U: folds to ASCII %v, foldsToASCII says otherwise", r, folds)
		}
	}
}

// The file's path decides as it does for gitleaks: files its allowlist
// skips (vendored modules, node_modules, go.sum) report nothing, rules
// bound to a path (Terraform, Kubernetes YAML) apply only there, and a
// PKCS#12 file is reported by name.
func TestSecretScanTakesThePathIntoAccountAsGitleaks(t *testing.T) {
	s, err := defaultSecretScanner()
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Join(secretSeeds, ""))
	found := 0
	for _, p := range []string{"src/a.go", "vendor/github.com/acme/x/a.go", "web/node_modules/left-pad/index.js", "go.sum",
		"infra/main.tf", "deploy/secret.yml.txt", "certs/client.p12", "a/gitleaks.toml", "lib/python3.12/site.py"} {
		got, want := scannedFindings(s, p, data), plainFindings(t, s, p, data)
		if !slices.Equal(got, want) {
			t.Errorf("%s: scanner found %v, gitleaks reading it whole %v", p, got, want)
		}
		if len(want) > 0 {
			found++
		}
	}
	if found < 4 {
		t.Fatalf("only %d paths had findings: the seeds no longer hold secrets gitleaks finds", found)
	}
}

// A rule's match spread over more lines than the windows' least context
// (quotes and the operator on lines of their own) is still found: each
// keyword hit gets the lines its rules' expressions can span.
func TestSecretSpreadOverLinesIsFound(t *testing.T) {
	s, err := defaultSecretScanner()
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		"package x\n\nconst adobe\n\n\n=\n\n\n'0123456789abcdef0123456789abcdef'\n",
		"linkedin\n\n\n:\n\n\n`a1b2c3d4e5f6g7h8`\n",
		"password\n\n\n=\n\n\n'Qw8eRt5yUi2oPa7s'\n",
	} {
		got, want := scannedFindings(s, "src/a.go", []byte(text)), plainFindings(t, s, "src/a.go", []byte(text))
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%q: scanner found %v, gitleaks reading it whole %v", text, got, want)
		}
	}
}
