package quota

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDetachOrphanLoopsSymlinkedDir: a store reached through a symlink
// keeps its live images (keep sees paths as the caller spells them).
func TestDetachOrphanLoopsSymlinkedDir(t *testing.T) {
	needRoot(t)
	if err := loopSupported(); err != nil {
		t.Skip(err)
	}
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(link, "live.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	dev, f, err := AttachLoop(img, false)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer DetachLoop(dev, filepath.Join(real, "live.img"))
	got, err := DetachOrphanLoops(link, func(p string) bool { return p == img })
	if err != nil || len(got) != 0 {
		t.Errorf("detached %v %v; the image is live", got, err)
	}
	if devs, _ := LoopDevices(link); len(devs) != 1 {
		t.Errorf("devices under the symlinked dir: %+v", devs)
	}
}
