package cli

import (
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/connectsoft/marketplace/index/store/storetest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// mktBinary builds mkt and mkt-server once per test run into one directory,
// for tests that need separate processes: the mkt it returns finds
// mkt-server beside itself and becomes it for the server commands.
func mktBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mkt-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "mkt")
		for _, b := range []struct{ out, pkg string }{{binPath, "../../cmd/mkt"}, {filepath.Join(dir, serverName), "../../cmd/mkt-server"}} {
			if out, err := exec.Command("go", "build", "-o", b.out, b.pkg).CombinedOutput(); err != nil {
				binErr = fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// serverBinary is the mkt-server mktBinary built.
func serverBinary(t *testing.T) string {
	return filepath.Join(filepath.Dir(mktBinary(t)), serverName)
}

// TestIndexReplicasStartingTogetherMigrateOnce starts three `mkt index
// serve` processes at once on one fresh PostgreSQL schema: all of them come
// up, and every migration is recorded once (the replicas took turns under
// the migration lock instead of racing to create the same tables).
func TestIndexReplicasStartingTogetherMigrateOnce(t *testing.T) {
	bin := mktBinary(t)
	url := storetest.PostgresSchema(t)
	type replica struct {
		addr   string
		cmd    *exec.Cmd
		stderr bytes.Buffer
		exited chan error
	}
	replicas := make([]*replica, 3)
	for i := range replicas {
		r := &replica{addr: freePort(t), exited: make(chan error, 1)}
		config := filepath.Join(t.TempDir(), "index.yaml")
		if err := os.WriteFile(config, []byte(fmt.Sprintf("listen: %s\nstore: %q\nwebhookSecret: s\n", r.addr, url)), 0o644); err != nil {
			t.Fatal(err)
		}
		r.cmd = exec.Command(bin, "index", "serve", "--config", config)
		r.cmd.Stderr = &r.stderr
		replicas[i] = r
	}
	for _, r := range replicas { // as close together as exec allows
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { r.exited <- r.cmd.Wait() }()
	}
	defer func() {
		for _, r := range replicas {
			r.cmd.Process.Signal(syscall.SIGTERM)
			<-r.exited
		}
	}()
	for i, r := range replicas {
		waitFor(t, fmt.Sprintf("replica %d to be ready", i), func() bool {
			select {
			case err := <-r.exited:
				r.exited <- err
				t.Fatalf("replica %d exited: %v\n%s", i, err, r.stderr.String())
			default:
			}
			resp, err := http.Get("http://" + r.addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	files, err := filepath.Glob("../../index/store/migrations/postgres/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	rows, err := db.Query(`SELECT version_id, COUNT(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var recorded []string
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("migration %d recorded %d times", v, n)
		}
		recorded = append(recorded, fmt.Sprint(v))
	}
	// Version 0 is goose's own mark, then one per file, numbered by the
	// file name's prefix (numbers leave gaps between features' ranges).
	want := []string{"0"}
	for _, f := range files {
		n, _, _ := strings.Cut(filepath.Base(f), "_")
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatalf("migration %s: no version number: %v", f, err)
		}
		want = append(want, fmt.Sprint(v))
	}
	if strings.Join(recorded, ",") != strings.Join(want, ",") {
		t.Fatalf("recorded versions %s, want %s", strings.Join(recorded, ","), strings.Join(want, ","))
	}
}
