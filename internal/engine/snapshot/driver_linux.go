package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"cove/internal/engine/archive"
)

// driver is what differs between overlay, btrfs and copy snapshots.
type driver interface {
	name() string
	// newLayer creates fs (absent) ready to receive a layer on top of
	// the committed snapshot directory lower ("" for a base layer).
	newLayer(ctx context.Context, fs, lower string) error
	// whiteouts says how Apply writes whiteouts.
	whiteouts() archive.WhiteoutMode
	// seal makes fs read-only before it is committed where it can.
	seal(fs string) error
	// newActive creates the writable layer at p (fs, work) on top of
	// chain (snapshot fs directories, topmost first).
	newActive(ctx context.Context, p layerPaths, chain []string, readOnly bool) error
	// mounts returns the mounts assembling the active layer at p.
	mounts(p layerPaths, chain []string, readOnly bool) []Mount
}

// layerPaths locates an active layer's directories: dir is
// active/<key>; fs and work are dir/fs and dir/work, or dir/q/fs and
// dir/q/work when an overlay or copy layer is capped by a quota driver.
type layerPaths struct {
	dir, fs, work string
}

func plainPaths(dir string) layerPaths {
	return layerPaths{dir: dir, fs: filepath.Join(dir, "fs"), work: filepath.Join(dir, "work")}
}

func newDriver(name string) driver {
	switch name {
	case DriverOverlay:
		return overlayDriver{}
	case DriverBtrfs:
		return btrfsDriver{}
	case DriverCopy:
		return copyDriver{}
	}
	return nil
}

// overlayDriver keeps each layer's diff in its own directory, with
// overlayfs whiteouts, and mounts containers as overlayfs.
type overlayDriver struct{}

func (overlayDriver) name() string                    { return DriverOverlay }
func (overlayDriver) whiteouts() archive.WhiteoutMode { return archive.WhiteoutOverlay }
func (overlayDriver) seal(string) error               { return nil }

func (overlayDriver) newLayer(_ context.Context, fs, _ string) error {
	return os.Mkdir(fs, 0o755)
}

func (overlayDriver) newActive(_ context.Context, p layerPaths, chain []string, readOnly bool) error {
	if len(chain) == 0 {
		if err := os.Mkdir(filepath.Join(p.dir, "empty"), 0o755); err != nil {
			return err
		}
	}
	if readOnly {
		return nil
	}
	if err := os.Mkdir(p.fs, 0o755); err != nil {
		return err
	}
	return os.Mkdir(p.work, 0o700)
}

func (overlayDriver) mounts(p layerPaths, chain []string, readOnly bool) []Mount {
	if len(chain) == 0 {
		chain = []string{filepath.Join(p.dir, "empty")}
	}
	if readOnly {
		if len(chain) == 1 {
			return []Mount{{Type: "bind", Source: chain[0], Options: []string{"rbind", "ro"}}}
		}
		return []Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(chain, ":")}}}
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + strings.Join(chain, ":"),
		"upperdir=" + p.fs,
		"workdir=" + p.work,
	}}}
}

// copyDriver keeps a full copy of the tree in each snapshot and container:
// slow and large, but works on any filesystem.
type copyDriver struct{}

func (copyDriver) name() string                    { return DriverCopy }
func (copyDriver) whiteouts() archive.WhiteoutMode { return archive.WhiteoutDelete }
func (copyDriver) seal(string) error               { return nil }

func (copyDriver) newLayer(ctx context.Context, fs, lower string) error {
	if err := os.Mkdir(fs, 0o755); err != nil {
		return err
	}
	if lower == "" {
		return nil
	}
	_, err := archive.CopyTree(ctx, lower, fs)
	return err
}

func (d copyDriver) newActive(ctx context.Context, p layerPaths, chain []string, readOnly bool) error {
	if readOnly {
		if len(chain) == 0 {
			return os.Mkdir(filepath.Join(p.dir, "empty"), 0o755)
		}
		return nil // a read-only bind of the snapshot itself
	}
	lower := ""
	if len(chain) > 0 {
		lower = chain[0]
	}
	return d.newLayer(ctx, p.fs, lower)
}

func (copyDriver) mounts(p layerPaths, chain []string, readOnly bool) []Mount {
	return bindMounts(p, chain, readOnly)
}

// bindMounts is the mount of a btrfs or copy active layer: its own tree,
// or for a view the snapshot itself, read-only.
func bindMounts(p layerPaths, chain []string, readOnly bool) []Mount {
	if readOnly {
		src := filepath.Join(p.dir, "empty")
		if len(chain) > 0 {
			src = chain[0]
		}
		return []Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}
	}
	return []Mount{{Type: "bind", Source: p.fs, Options: []string{"rbind", "rw"}}}
}

// probeOverlay checks that an overlay with a whiteout and an opaque
// directory mounts with its upper layer in p, an empty directory.
func probeOverlay(p string) error {
	for _, d := range []string{"lower", "upper", "work", "merged", "lower/d"} {
		if err := os.Mkdir(filepath.Join(p, d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mknod(filepath.Join(p, "upper", "w"), unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	if err := os.Mkdir(filepath.Join(p, "upper", "d"), 0o755); err != nil {
		return err
	}
	if err := unix.Setxattr(filepath.Join(p, "upper", "d"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("opaque xattr: %w", err)
	}
	m := filepath.Join(p, "merged")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", filepath.Join(p, "lower"), filepath.Join(p, "upper"), filepath.Join(p, "work"))
	if err := unix.Mount("overlay", m, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	if err := unix.Unmount(m, 0); err != nil {
		unix.Unmount(m, unix.MNT_DETACH)
		return fmt.Errorf("unmount probe: %w", err)
	}
	return nil
}

func isBtrfs(p string) bool {
	var st unix.Statfs_t
	return unix.Statfs(p, &st) == nil && st.Type == unix.BTRFS_SUPER_MAGIC
}

// removeAt deletes name in directory dirfd and everything below it,
// destroying btrfs subvolumes on the way instead of emptying them.
func removeAt(dirfd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(dirfd, name, 0)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if isSubvolume(fd, &st) {
		unix.Close(fd)
		return destroySubvolume(dirfd, name)
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	for _, n := range names {
		var cst unix.Stat_t
		if unix.Fstatat(fd, n, &cst, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		if cst.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = removeAt(fd, n)
		} else {
			err = unix.Unlinkat(fd, n, 0)
		}
		if err != nil && err != unix.ENOENT {
			f.Close()
			return fmt.Errorf("remove %s/%s: %w", name, n, err)
		}
	}
	f.Close()
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}
