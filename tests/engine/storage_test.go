package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// --storage-opt size caps the writable layer (loop driver on this ext4):
// writes stop at the cap inside the container; inspect --size, update
// --storage-opt, volume --opt size, info and system df report it.
func TestEngineStorageQuota(t *testing.T) {
	e := newEnv(t)
	info := e.mustCove("info")
	if !strings.Contains(info, "Quota Driver (--storage-opt size): ") || strings.Contains(info, "size): none") {
		t.Skipf("no quota driver here:\n%s", info)
	}
	out, code := e.cove("run", "--name", "cengsto", "--storage-opt", "size=20m", img,
		"sh", "-c", "dd if=/dev/zero of=/big bs=1M count=40; echo dd=$?")
	if code != 0 || !strings.Contains(out, "No space left") || !strings.Contains(out, "dd=1") {
		t.Fatalf("dd of 40 MiB into a 20 MiB layer: exit %d\n%s", code, out)
	}
	sizes := strings.Fields(e.mustCove("inspect", "--size", "-f", "{{.SizeRw}} {{.StorageLimit}}", "cengsto"))
	rw, _ := strconv.ParseFloat(sizes[0], 64)
	limit, _ := strconv.ParseFloat(sizes[1], 64)
	if limit < 20<<20 || limit > 24<<20 || rw < 15<<20 || rw > limit {
		t.Errorf("inspect --size: SizeRw %v StorageLimit %v, want ~20 MiB used of a ~20 MiB cap", rw, limit)
	}
	// Shrinking below the usage is refused, growing (stopped) works.
	if out, code := e.cove("update", "--storage-opt", "size=10m", "cengsto"); code != 125 || !strings.Contains(out, "--storage-opt") {
		t.Errorf("update to below usage: exit %d\n%s", code, out)
	}
	// Growing a running container's loop-capped layer needs
	// CAP_SYS_RESOURCE, which root lacks on this machine: refused, unchanged.
	if !strings.Contains(info, "loop") || capSysResource() {
		t.Log("live growth refusal not checked (not the loop driver, or CAP_SYS_RESOURCE held)")
	} else {
		e.mustCove("run", "-d", "--name", "cengsto-live", "--storage-opt", "size=20m", img, "sleep", "60")
		if out, code := e.cove("update", "--storage-opt", "size=40m", "cengsto-live"); code != 125 || !strings.Contains(out, "CAP_SYS_RESOURCE") {
			t.Errorf("live growth without CAP_SYS_RESOURCE: exit %d\n%s", code, out)
		}
		if got := e.inspect("cengsto-live", "{{.HostConfig.StorageOpt.size}}"); got != "20m" {
			t.Errorf("a refused resize changed StorageOpt to %q", got)
		}
	}
	e.mustCove("update", "--storage-opt", "size=64m", "cengsto")
	if got := e.inspect("cengsto", "{{.HostConfig.StorageOpt.size}}"); got != "64m" {
		t.Errorf("StorageOpt after update: %q", got)
	}
	e.mustCove("start", "-a", "cengsto") // the same dd now fits
	if out, code := e.cove("run", "--rm", "--storage-opt", "bogus=1", img, "true"); code != 125 || !strings.Contains(out, "--storage-opt") {
		t.Errorf("unknown storage option: exit %d\n%s", code, out)
	}

	// A capped volume.
	e.mustCove("volume", "create", "--opt", "size=10m", "cengsto-v")
	// Its loop filesystem stays mounted until the volume is removed.
	t.Cleanup(func() { e.cove("volume", "rm", "-f", "cengsto-v") })
	out, code = e.cove("run", "--rm", "-v", "cengsto-v:/v", img, "dd", "if=/dev/zero", "of=/v/big", "bs=1M", "count=20")
	if code == 0 || !strings.Contains(out, "No space left") {
		t.Errorf("dd of 20 MiB into a 10 MiB volume: exit %d\n%s", code, out)
	}
	e.cove("rm", "-f", "cengsto-live")
	df := e.mustCove("system", "df")
	for _, want := range []string{"Images          1", "Containers      1", "Local Volumes   1"} {
		if !strings.Contains(df, want) {
			t.Errorf("system df lacks %q:\n%s\n%s", want, df, e.mustCove("ps", "-a"))
		}
	}
	dfv := e.mustCove("system", "df", "-v")
	if !strings.Contains(dfv, "cengsto-v") || !strings.Contains(dfv, "cengsto") {
		t.Errorf("system df -v lacks the container or volume:\n%s", dfv)
	}
}

func capSysResource() bool {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<24) != 0
		}
	}
	return false
}

// On a btrfs store (a loop-mounted btrfs as --root) the layer cap is a
// qgroup limit: writes past it fail with EDQUOT inside the container.
func TestEngineStorageQuotaBtrfs(t *testing.T) {
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs not installed (Debian btrfs-progs)")
	}
	base := t.TempDir()
	fsImg, mnt := filepath.Join(base, "img"), filepath.Join(base, "mnt")
	os.Mkdir(mnt, 0o755)
	for _, c := range [][]string{{"truncate", "-s", "512M", fsImg}, {"mkfs.btrfs", "-q", fsImg}, {"mount", "-o", "loop", fsImg, mnt}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	// Registered before the env's teardown, so it runs after it.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount btrfs: %v %s", err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	e := newEnvRoot(t, filepath.Join(mnt, "root"))
	if info := e.mustCove("info"); !strings.Contains(info, "size): btrfs-qgroup") {
		t.Fatalf("btrfs store without the btrfs-qgroup driver:\n%s", info)
	}
	out, _ := e.cove("run", "--rm", "--storage-opt", "size=20m", img,
		"sh", "-c", "dd if=/dev/zero of=/big bs=1M count=40 2>&1; echo dd=$?; sync; ls -l /big")
	if !strings.Contains(out, "Disk quota exceeded") || !strings.Contains(out, "dd=1") {
		t.Fatalf("dd of 40 MiB into a 20 MiB btrfs layer:\n%s", out)
	}
}

// newEnvRoot is newEnv with the store at root.
func newEnvRoot(t *testing.T, root string) *env {
	t.Helper()
	run, err := os.MkdirTemp("/tmp", "ceng")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	e := &env{t: t, root: root, runRoot: run}
	e.mustCove("image", "import", rootTar, img)
	t.Cleanup(e.teardown)
	return e
}
