package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func execOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// podman runs podman on a private store (vfs: no mounts to clean up).
func podman(t *testing.T, dir string, args ...string) string {
	t.Helper()
	base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"}
	out, err := execOut("podman", append(base, args...)...)
	if err != nil {
		t.Fatalf("podman %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(out)
}

// TestImagesPodmanInterop: `podman load` reads cove's docker-archive and
// OCI archive; cove loads podman's. Image IDs (config digests) survive.
func TestImagesPodmanInterop(t *testing.T) {
	requireRoot(t)
	requireTool(t, "podman")
	root, pdir := t.TempDir(), t.TempDir()
	t.Cleanup(func() {
		execOut("podman", "--root", filepath.Join(pdir, "root"), "--runroot", filepath.Join(pdir, "run"), "--storage-driver", "vfs", "system", "reset", "-f")
	})
	ref := "localhost/cove-test/interop:1"
	id := mustCove(t, root, "import", rootfs(t), ref)
	bare := strings.TrimPrefix(id, "sha256:")

	for _, format := range []string{"docker-archive", "oci-archive"} {
		archive := filepath.Join(t.TempDir(), format+".tar")
		mustCove(t, root, "save", "--format", format, "-o", archive, ref)
		out := podman(t, pdir, "load", "-i", archive)
		if !strings.Contains(out, ref) {
			t.Fatalf("podman load of cove's %s: %s", format, out)
		}
		if got := podman(t, pdir, "image", "inspect", "--format", "{{.Id}}", ref); got != bare {
			t.Fatalf("podman sees image ID %s after loading cove's %s, want %s", got, format, bare)
		}
		podman(t, pdir, "rmi", ref)
	}

	podman(t, pdir, "load", "-i", func() string {
		p := filepath.Join(t.TempDir(), "a.tar")
		mustCove(t, root, "save", "-o", p, ref)
		return p
	}())
	podman(t, pdir, "tag", ref, "localhost/from-podman:2")
	for _, format := range []string{"docker-archive", "oci-archive"} {
		archive := filepath.Join(t.TempDir(), "podman-"+format+".tar")
		podman(t, pdir, "save", "--format", format, "-o", archive, "localhost/from-podman:2")
		other := t.TempDir()
		out := mustCove(t, other, "load", "-q", "-i", archive)
		if !strings.Contains(out, "localhost/from-podman:2") {
			t.Fatalf("cove load of podman's %s printed %q", format, out)
		}
		if got := inspectField(t, other, "localhost/from-podman:2", "{{.ID}}"); got != id {
			t.Fatalf("cove sees ID %s after loading podman's %s, want %s", got, format, id)
		}
	}
}

// TestImagesFullDisk: pulling into a store on a full tmpfs fails with a
// clear error naming the image and layer, and leaves no image or snapshot.
func TestImagesFullDisk(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t)
	src := t.TempDir()
	dir := filepath.Join(t.TempDir(), "rootfs")
	os.MkdirAll(dir, 0o755)
	big := make([]byte, 12<<20)
	f, _ := os.Open("/dev/urandom")
	if _, err := f.Read(big); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := reg.host + "/cove-test/big:1"
	mustCove(t, src, "import", dir, ref)
	mustCove(t, src, "push", "-q", ref)

	full := t.TempDir()
	if out, err := execOut("mount", "-t", "tmpfs", "-o", "size=8m", "cove-images-test", full); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { execOut("umount", "-l", full) })
	r := cove(t, full, "pull", "-q", ref)
	t.Log(r.stderr)
	if r.code != 125 {
		t.Fatalf("pull into a full store: exit %d, want 125 (%s)", r.code, r.stderr)
	}
	for _, want := range []string{"no space left on device", ref, "layer sha256:"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error lacks %q: %s", want, r.stderr)
		}
	}
	if out := mustCove(t, full, "images", "-q"); out != "" {
		t.Fatalf("image visible after a failed pull: %s", out)
	}
	snaps, _ := os.ReadDir(filepath.Join(full, "snapshots", "snapshots"))
	if len(snaps) != 0 {
		t.Fatalf("%d snapshots committed after a failed pull", len(snaps))
	}
	// The partial download stays for a resume until prune removes it.
	mustCove(t, full, "image", "prune")
	ingest, _ := os.ReadDir(filepath.Join(full, "content", "ingest"))
	if len(ingest) != 0 {
		t.Fatalf("prune left %d partial downloads", len(ingest))
	}
}

// TestImagesCLIErrors: engine errors exit 125 with a message.
func TestImagesCLIErrors(t *testing.T) {
	root := t.TempDir()
	for _, args := range [][]string{
		{"image", "inspect", "no-such-image"},
		{"pull", "UPPER/Case"},
		{"rmi", "nothing:here"},
		{"image", "save", "-o", filepath.Join(root, "x.tar"), "missing"},
	} {
		r := cove(t, root, args...)
		if r.code != 125 || !strings.HasPrefix(r.stderr, "Error: ") {
			t.Errorf("cove %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "x.tar")); err == nil {
		t.Error("failed save left its output file")
	}
}

// TestImagesDockerInterop: a private dockerd loads cove's docker-archive,
// and cove loads `docker save` output (the legacy layout with layer.tar
// directories). Image IDs survive both ways.
func TestImagesDockerInterop(t *testing.T) {
	requireRoot(t)
	requireTool(t, "dockerd")
	requireTool(t, "docker")
	dir, err := os.MkdirTemp("/var/tmp", "cove-images-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	d := exec.Command("dockerd", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "pid"), "-H", "unix://"+sock, "--bridge=none", "--iptables=false",
		"--ip-masq=false", "--storage-driver", "vfs")
	logf, _ := os.Create(filepath.Join(dir, "log"))
	d.Stdout, d.Stderr = logf, logf
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { d.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			d.Process.Kill()
			<-done
		}
		logf.Close()
		os.RemoveAll(dir)
	})
	docker := func(args ...string) string {
		t.Helper()
		out, err := execOut("docker", append([]string{"-H", "unix://" + sock}, args...)...)
		if err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(out)
	}
	for i := 0; ; i++ {
		if _, err := execOut("docker", "-H", "unix://"+sock, "version"); err == nil {
			break
		}
		if i == 100 {
			b, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("dockerd did not start:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}

	root := t.TempDir()
	ref := "localhost/cove-test/docker:1"
	id := mustCove(t, root, "import", rootfs(t), ref)
	archive := filepath.Join(t.TempDir(), "cove.tar")
	mustCove(t, root, "save", "-o", archive, ref)
	docker("load", "-i", archive)
	if got := docker("image", "inspect", "--format", "{{.Id}}", ref); got != id {
		t.Fatalf("docker sees image ID %s, want %s", got, id)
	}
	docker("tag", ref, "from-docker:2")
	saved := filepath.Join(t.TempDir(), "docker.tar")
	docker("save", "-o", saved, "from-docker:2")
	other := t.TempDir()
	mustCove(t, other, "load", "-q", "-i", saved)
	if got := inspectField(t, other, "from-docker:2", "{{.ID}}"); got != id {
		t.Fatalf("cove sees ID %s after loading docker's archive, want %s", got, id)
	}
}
