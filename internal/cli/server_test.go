package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lean runs mkt in process as mkt does: without the server commands, which
// it runs mkt-server for (as a child process here, not in place).
func lean(t *testing.T, args ...string) mktRun {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(context.Background(), args, nil, &out, &errb, nil, false)
	return mktRun{code, out.String(), errb.String()}
}

// tokenConfig is an index config whose store holds one token of acme.
func tokenConfig(t *testing.T) string {
	config := filepath.Join(t.TempDir(), "index.yaml")
	if err := os.WriteFile(config, []byte("store: sqlite://index.db\nwebhookSecret: s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustMkt(t, "index", "token", "create", "--config", config, "--tenant", "acme", "--roles", "reader")
	return config
}

// decodeOne decodes stdout, which must be exactly one JSON document, into v.
func decodeOne(t *testing.T, stdout string, v any) {
	t.Helper()
	oneDocument(t, stdout)
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatal(err)
	}
}

// mkt, which does not link the index, runs index token list as mkt-server:
// in place from the installed binary (found beside it), as a child when
// run in process (MKT_SERVER); either way one JSON document, the same as
// mkt-server's own.
func TestLeanMktDelegatesTokenListToMktServer(t *testing.T) {
	config := tokenConfig(t)
	want := mustMkt(t, "index", "token", "list", "--config", config, "--format", "json").stdout
	var doc struct {
		Items []struct{ ID, Tenant, State string }
	}
	decodeOne(t, want, &doc)
	if len(doc.Items) != 1 || doc.Items[0].Tenant != "acme" {
		t.Fatalf("token list: %s", want)
	}

	t.Setenv(serverEnv, serverBinary(t))
	r := lean(t, "index", "token", "list", "--config", config, "--format", "json")
	if r.code != 0 || r.stdout != want {
		t.Fatalf("mkt (in process) token list: exit %d\nstdout %s\nwant %s\nstderr %s", r.code, r.stdout, want, r.stderr)
	}
	if r := lean(t, "index", "token", "revoke", "nosuchid", "--config", config, "--format", "json"); r.code != 1 || !strings.Contains(r.stdout, `not found (an ID is 16 hex digits`) {
		t.Fatalf("mkt-server's failure through mkt: %+v", r)
	}

	os.Unsetenv(serverEnv) // the installed mkt finds mkt-server beside it
	cmd := exec.Command(mktBinary(t), "index", "token", "list", "--config", config, "--format", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || string(out) != want {
		t.Fatalf("bin/mkt index token list: %v\nstdout %s\nwant %s\nstderr %s", err, out, want, stderr.String())
	}
}

// Without mkt-server, a server command fails with code notInstalled and
// says what to install; --help still works, from mkt's own definitions.
func TestLeanMktWithoutMktServerSaysWhatToInstall(t *testing.T) {
	t.Setenv(serverEnv, filepath.Join(t.TempDir(), "nosuch"))
	r := lean(t, "index", "token", "list", "--format", "json")
	var doc struct {
		Error struct {
			Code, Message, Hint string
			ExitCode            int
		}
	}
	decodeOne(t, r.stdout, &doc)
	if r.code != 1 || doc.Error.Code != "notInstalled" || doc.Error.ExitCode != 1 ||
		!strings.Contains(doc.Error.Message, "mkt index token list needs mkt-server") ||
		!strings.Contains(doc.Error.Hint, "go install github.com/connectsoft/marketplace/cmd/mkt-server@") ||
		!strings.Contains(doc.Error.Hint, "make build") {
		t.Fatalf("exit %d, %s", r.code, r.stdout)
	}
	if r := lean(t, "dev", "up"); r.code != 1 || !strings.Contains(r.stderr, "mkt: mkt dev up needs mkt-server") || !strings.Contains(r.stderr, "hint: install it beside mkt") {
		t.Fatalf("text: %+v", r)
	}
	full := mustMkt(t, "index", "serve", "--help")
	if r := lean(t, "index", "serve", "--help"); r.code != 0 || r.stdout != full.stdout {
		t.Fatalf("index serve --help differs: %+v\nwant %s", r, full.stdout)
	}
	if r := lean(t, "index", "token", "create", "--tenant", "acme"); r.code != 2 {
		t.Fatalf("bad usage is mkt's own: %+v", r)
	}

	// The installed mkt alone: nothing beside it, nothing on PATH.
	os.Unsetenv(serverEnv)
	alone := filepath.Join(t.TempDir(), "mkt")
	b, err := os.ReadFile(mktBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(alone, b, 0o755)
	cmd := exec.Command(alone, "index", "token", "list", "--format", "json")
	cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
	out, err := cmd.Output()
	var ee *exec.ExitError
	decodeOne(t, string(out), &doc)
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || doc.Error.Code != "notInstalled" || !strings.Contains(doc.Error.Message, filepath.Join(filepath.Dir(alone), "mkt-server")) {
		t.Fatalf("%v: %s", err, out)
	}
}

// mkt index serve is mkt-server's: SIGHUP reaches it (the policy is
// reloaded), SIGTERM stops it with exit 0, from the installed mkt (which
// became mkt-server) and from mkt in process (which passes the signals on).
func TestLeanMktIndexServeGetsItsSignals(t *testing.T) {
	t.Run("installed", func(t *testing.T) {
		addr := freePort(t)
		config := filepath.Join(t.TempDir(), "index.yaml")
		os.WriteFile(config, []byte("listen: "+addr+"\nstore: sqlite://index.db\nwebhookSecret: s\n"), 0o644)
		cmd := exec.Command(mktBinary(t), "index", "serve", "--config", config)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		waitListening(t, addr)
		cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, "the policy to be reloaded", func() bool { return strings.Contains(stderr.String(), "policy reloaded") })
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("index serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	})
	t.Run("in process", func(t *testing.T) {
		// The test process gets the signals mkt passes on: caught here
		// too, so that one sent before mkt listens cannot end the test.
		caught := make(chan os.Signal, 4)
		signal.Notify(caught, syscall.SIGHUP)
		defer signal.Stop(caught)
		t.Setenv(serverEnv, serverBinary(t))
		addr := freePort(t)
		config := filepath.Join(t.TempDir(), "index.yaml")
		os.WriteFile(config, []byte("listen: "+addr+"\nstore: sqlite://index.db\nwebhookSecret: s\n"), 0o644)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- execute(ctx, []string{"index", "serve", "--config", config, "--format", "json"}, nil, &bytes.Buffer{}, &stderr, nil, false)
		}()
		waitListening(t, addr)
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		waitFor(t, "the policy to be reloaded", func() bool { return strings.Contains(stderr.String(), "policy reloaded") })
		cancel() // mkt interrupts mkt-server
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("mkt-server did not stop")
		}
	})
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, "the index to listen", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

// syncBuffer is a bytes.Buffer that a process writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// MKT_SERVER naming mkt itself fails once, instead of mkt running itself
// for ever.
func TestMktServerNamingMktFails(t *testing.T) {
	t.Setenv(serverEnv, mktBinary(t))
	r := lean(t, "index", "token", "list", "--format", "json")
	var doc struct {
		Error struct{ Code, Message string }
	}
	decodeOne(t, r.stdout, &doc)
	if r.code != 1 || !strings.Contains(doc.Error.Message, "must name mkt-server, not mkt") {
		t.Fatalf("exit %d: %s\n%s", r.code, r.stdout, r.stderr)
	}
}
