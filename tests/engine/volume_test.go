package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Named volumes: copy-up from the image on first use, ro, survival of the
// container's removal, in-use refusal; binds; --volumes-from; tmpfs.
func TestEngineVolumes(t *testing.T) {
	e := newEnv(t)
	e.mustCove("volume", "create", "--label", "ceng=1", "cengvol")
	// First use copies the image's /etc into the empty volume.
	if out := e.mustCove("run", "--rm", "-v", "cengvol:/etc", img, "sh", "-c", "ls /etc; echo kept > /etc/mine"); !strings.Contains(out, "passwd") {
		t.Errorf("volume at /etc was not filled from the image: %q", out)
	}
	mp := e.mustCove("volume", "inspect", "-f", "{{.Mountpoint}}", "cengvol")
	if b, err := os.ReadFile(filepath.Join(mp, "mine")); err != nil || string(b) != "kept\n" {
		t.Errorf("write through the volume: %q %v", b, err)
	}
	// Read-only mount; data survives the first container.
	out, code := e.cove("run", "--rm", "-v", "cengvol:/data:ro", img, "sh", "-c", "cat /data/mine; touch /data/x")
	if code == 0 || !strings.Contains(out, "kept") || !strings.Contains(out, "Read-only") {
		t.Errorf("ro volume: exit %d\n%s", code, out)
	}
	// A volume holding files is not copied over again.
	e.mustCove("run", "--rm", "-v", "cengvol:/bin/sub", img, "true")
	if _, err := os.Stat(filepath.Join(mp, "busybox")); err == nil {
		t.Errorf("copy-up into a non-empty volume")
	}

	bind := t.TempDir()
	os.WriteFile(filepath.Join(bind, "host"), []byte("from host\n"), 0o644)
	e.mustCove("run", "-d", "--name", "cengvol-a", "-v", "cengvol:/v", "-v", "/anon", "-v", bind+":/b",
		"--mount", "type=tmpfs,target=/t,tmpfs-size=1m", img, "sleep", "60")
	if _, code := e.cove("volume", "rm", "cengvol"); code == 0 {
		t.Errorf("volume rm of a volume in use succeeded")
	}
	pid := e.inspect("cengvol-a", "{{.State.Pid}}")
	mi, _ := os.ReadFile("/proc/" + pid + "/mountinfo")
	if !strings.Contains(string(mi), " /t rw,") || !strings.Contains(string(mi), " /b rw,") || !strings.Contains(string(mi), " /anon rw,") {
		t.Errorf("container mounts lack /t, /b or /anon:\n%s", mi)
	}
	if got := e.inspect("cengvol-a", `{{(index .Mounts 0).Name}} {{range .Mounts}}{{.Type}}:{{.Destination}}:{{.RW}} {{end}}`); got != "cengvol volume:/v:true volume:/anon:true bind:/b:true tmpfs:/t:true" {
		t.Errorf("inspect Mounts: %q", got)
	}
	// --volumes-from, read-only.
	out, code = e.cove("run", "--rm", "--volumes-from", "cengvol-a:ro", img, "sh", "-c", "cat /v/mine /b/host; touch /b/y")
	if code == 0 || !strings.Contains(out, "kept") || !strings.Contains(out, "from host") || !strings.Contains(out, "Read-only") {
		t.Errorf("--volumes-from :ro: exit %d\n%s", code, out)
	}
	anon := ""
	for _, n := range strings.Fields(e.mustCove("volume", "ls", "-q")) {
		if n != "cengvol" {
			anon = n
		}
	}
	if anon == "" {
		t.Fatalf("no anonymous volume listed")
	}
	// rm keeps volumes; rm -v takes the anonymous one only.
	e.mustCove("rm", "-f", "-v", "cengvol-a")
	if got := e.mustCove("volume", "ls", "-q"); got != "cengvol" {
		t.Errorf("after rm -v: volumes %q, want only cengvol", got)
	}
	e.mustCove("run", "--name", "cengvol-b", "-v", "/anon2", img, "true")
	e.mustCove("rm", "cengvol-b")
	if n := len(strings.Fields(e.mustCove("volume", "ls", "-q"))); n != 2 {
		t.Errorf("rm without -v removed an anonymous volume (%d volumes)", n)
	}
	// --rm takes its anonymous volumes along.
	e.mustCove("run", "--rm", "-v", "/anon3", img, "true")
	if n := len(strings.Fields(e.mustCove("volume", "ls", "-q"))); n != 2 {
		t.Errorf("run --rm left its anonymous volume (%d volumes, want 2)", n)
	}
	e.mustCove("volume", "prune", "-f")
	if got := e.mustCove("volume", "ls", "-q"); got != "cengvol" {
		t.Errorf("after prune: %q", got)
	}
	if got := e.mustCove("volume", "ls", "-q", "--filter", "label=ceng=1"); got != "cengvol" {
		t.Errorf("ls --filter label: %q", got)
	}
	e.mustCove("volume", "rm", "cengvol")
	// Bad flags: exit 125, nothing created.
	for _, bad := range [][]string{{"-v", "x::"}, {"--mount", "type=nope,target=/x"}, {"--volumes-from", "cengvol-none"}, {"-v", "a:/x", "-v", "b:/x"}} {
		args := append(append([]string{"create"}, bad...), img, "true")
		if out, code := e.cove(args...); code != 125 {
			t.Errorf("create %v: exit %d, want 125\n%s", bad, code, out)
		}
	}
	if ids := e.mustCove("ps", "-aq"); ids != "" {
		t.Errorf("bad volume flags created containers: %q", ids)
	}
	if vols := e.mustCove("volume", "ls", "-q"); vols != "" {
		t.Errorf("bad volume flags left volumes: %q", vols)
	}
}

// A claim left by a container that is gone (a crash between claim and
// record) blocks volume rm until cove system check drops it.
func TestEngineVolumeStaleClaim(t *testing.T) {
	e := newEnv(t)
	e.mustCove("volume", "create", "cengvol-stale")
	meta := filepath.Join(e.root, "volumes", "cengvol-stale", "volume.json")
	b, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	gone := strings.Repeat("ab", 32)
	b = []byte(strings.Replace(string(b), `"Scope"`, `"UsedBy": ["`+gone+`"], "Scope"`, 1))
	if err := os.WriteFile(meta, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, code := e.cove("volume", "rm", "cengvol-stale"); code == 0 {
		t.Fatalf("volume rm ignored the claim")
	}
	// A fresh claim may be a create in progress: left alone.
	if out := e.mustCove("system", "check", "--dry-run"); strings.TrimSpace(out) != "ok" {
		t.Errorf("check flagged a claim younger than a minute:\n%s", out)
	}
	old := time.Now().Add(-2 * time.Minute)
	os.Chtimes(meta, old, old)
	if out, _ := e.cove("system", "check", "--dry-run"); !strings.Contains(out, "claimed by a container that is gone: "+gone) {
		t.Errorf("check --dry-run did not report the stale claim:\n%s", out)
	}
	e.mustCove("system", "check")
	e.mustCove("volume", "rm", "cengvol-stale")
}
