package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/pathrs"
)

// makeRestoreMountpoints creates inside rootfs the mount points of spec's
// mounts that a fresh root may lack, as runc does before a restore: a
// checkpoint restored into a new container (podman container restore
// --import) has a root without the files create made for its binds
// (/etc/hosts), and CRIU fails on a missing mount point. A bind of a
// non-directory gets an empty file, other mounts a directory. Mount
// points under a tmpfs mount are left alone (CRIU restores the tmpfs with
// its contents) and so are cgroup mounts (inside /sys/fs/cgroup).
func makeRestoreMountpoints(rootfs, bundleDir string, spec *specs.Spec) error {
	var tmpfs []string
	for _, m := range spec.Mounts {
		if m.Type == "tmpfs" {
			tmpfs = append(tmpfs, filepath.Clean(m.Destination))
		}
	}
	under := func(dest string) bool {
		for _, t := range tmpfs {
			if strings.HasPrefix(dest, t+"/") {
				return true
			}
		}
		return false
	}
	for _, m := range spec.Mounts {
		dest := filepath.Clean(m.Destination)
		if m.Type == "cgroup" || under(dest) {
			continue
		}
		dir := true
		if isBindMount(m) {
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(bundleDir, src)
			}
			fi, err := os.Stat(src)
			if err != nil {
				return fmt.Errorf("restore: mount %s: source: %w", dest, err)
			}
			dir = fi.IsDir()
		}
		var f *os.File
		var err error
		if dir {
			f, err = pathrs.MkdirAllInRoot(rootfs, dest, 0o755)
		} else {
			f, err = pathrs.CreateInRoot(rootfs, dest, 0o644)
		}
		if err != nil {
			return fmt.Errorf("restore: mount point %s: %w", dest, err)
		}
		f.Close()
	}
	return nil
}
