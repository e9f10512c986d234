package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEngineCp(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	e.mustCove("run", "-d", "--name", "ceng-cp", img, "sleep", "100")
	// Host -> container, a file and a tree; container -> host.
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("file data"), 0o640)
	os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree", "sub", "g"), []byte("g data"), 0o644)
	os.Symlink("sub/g", filepath.Join(dir, "tree", "link"))
	e.mustCove("cp", filepath.Join(dir, "f.txt"), "ceng-cp:/tmp/")
	e.mustCove("cp", filepath.Join(dir, "tree"), "ceng-cp:/tmp/tree")
	if out := e.mustCove("exec", "ceng-cp", "sh", "-c", "cat /tmp/f.txt; echo; cat /tmp/tree/link; echo; stat -c %a /tmp/f.txt"); out != "file data\ng data\n640" {
		t.Fatalf("cp into the container: %q", out)
	}
	e.mustCove("cp", "ceng-cp:/tmp/tree", filepath.Join(dir, "back"))
	if b, err := os.ReadFile(filepath.Join(dir, "back", "sub", "g")); err != nil || string(b) != "g data" {
		t.Fatalf("cp out of the container: %v %q", err, b)
	}
	if l, err := os.Readlink(filepath.Join(dir, "back", "link")); err != nil || l != "sub/g" {
		t.Fatalf("symlink copied out as %q, %v", l, err)
	}
	// A stopped container's files are reachable too.
	e.mustCove("stop", "-t", "0", "ceng-cp")
	e.mustCove("cp", "ceng-cp:/tmp/f.txt", filepath.Join(dir, "stopped.txt"))
	if b, _ := os.ReadFile(filepath.Join(dir, "stopped.txt")); string(b) != "file data" {
		t.Fatalf("cp from a stopped container: %q", b)
	}
}

// Symlinks in the container, even swapped during the copy, never make cp
// read or write outside the container's root.
func TestEngineCpSymlinkEscape(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	os.WriteFile(secret, []byte("HOST SECRET"), 0o600)
	victim := filepath.Join(host, "victim")
	os.Mkdir(victim, 0o755)
	e.mustCove("run", "-d", "--name", "ceng-esc", img, "sh", "-c",
		"ln -s "+secret+" /tmp/leak; ln -s ../../../../../../"+host+" /tmp/up; mkdir /tmp/real; "+
			"while true; do ln -sfn "+victim+" /tmp/swap.new; mv -T /tmp/swap.new /tmp/swap; mkdir -p /tmp/d; mv -T /tmp/d /tmp/swap 2>/dev/null; done")
	out := t.TempDir()
	if _, code := e.cove("cp", "ceng-esc:/tmp/leak", filepath.Join(out, "x")); code == 0 {
		if b, _ := os.ReadFile(filepath.Join(out, "x")); strings.Contains(string(b), "SECRET") {
			t.Fatal("cp read a host file through an absolute symlink")
		}
	}
	if _, code := e.cove("cp", "ceng-esc:/tmp/up/secret", filepath.Join(out, "y")); code == 0 {
		if b, _ := os.ReadFile(filepath.Join(out, "y")); strings.Contains(string(b), "SECRET") {
			t.Fatal("cp read a host file through a ../ symlink")
		}
	}
	payload := filepath.Join(out, "payload")
	os.WriteFile(payload, []byte("x"), 0o644)
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		e.cove("cp", payload, "ceng-esc:/tmp/swap/")
		e.cove("cp", payload, "ceng-esc:/tmp/up/victim/")
	}
	if ents, _ := os.ReadDir(victim); len(ents) != 0 {
		t.Fatalf("cp wrote %d entries into the host directory through a symlink", len(ents))
	}
}

func TestEngineCommit(t *testing.T) {
	e := newEnv(t)
	e.mustCove("run", "--name", "ceng-commit", img, "sh", "-c", "echo added > /added; rm /bin/vi; mkdir -p /etc/newdir")
	id := e.mustCove("commit", "-m", "test commit", "ceng-commit", "localhost/ceng-committed:v1")
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	out := e.mustCove("run", "--rm", "localhost/ceng-committed:v1", "sh", "-c", "cat /added; test -e /bin/vi || echo vi-gone; test -d /etc/newdir && echo dir")
	if out != "added\nvi-gone\ndir" {
		t.Fatalf("committed image: %q", out)
	}
	if out := e.mustCove("image", "history", "localhost/ceng-committed:v1"); !strings.Contains(out, "test commit") {
		t.Fatalf("history lacks the commit message: %q", out)
	}
}
