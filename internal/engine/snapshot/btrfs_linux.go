package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"cove/internal/engine/archive"
)

// btrfsFirstFreeObjectID is the inode number of every subvolume's root.
const btrfsFirstFreeObjectID = 256

// btrfsDriver keeps each snapshot as a read-only btrfs subvolume: a
// writable snapshot of its parent with the layer applied, then sealed.
// Containers get a writable snapshot of their image's top layer.
type btrfsDriver struct{}

func (btrfsDriver) name() string                    { return DriverBtrfs }
func (btrfsDriver) whiteouts() archive.WhiteoutMode { return archive.WhiteoutDelete }

func (btrfsDriver) newLayer(_ context.Context, fs, lower string) error {
	if lower == "" {
		return createSubvolume(fs)
	}
	return snapshotSubvolume(lower, fs, false)
}

func (btrfsDriver) seal(fs string) error { return setSubvolumeReadOnly(fs) }

func (d btrfsDriver) newActive(_ context.Context, p layerPaths, chain []string, readOnly bool) error {
	if readOnly {
		if len(chain) == 0 {
			return os.Mkdir(filepath.Join(p.dir, "empty"), 0o755)
		}
		return nil
	}
	if len(chain) == 0 {
		return createSubvolume(p.fs)
	}
	return snapshotSubvolume(chain[0], p.fs, false)
}

func (btrfsDriver) mounts(p layerPaths, chain []string, readOnly bool) []Mount {
	return bindMounts(p, chain, readOnly)
}

// isSubvolume reports whether the directory fd (stat st) is the root of a
// btrfs subvolume.
func isSubvolume(fd int, st *unix.Stat_t) bool {
	if st.Ino != btrfsFirstFreeObjectID {
		return false
	}
	var fs unix.Statfs_t
	return unix.Fstatfs(fd, &fs) == nil && fs.Type == unix.BTRFS_SUPER_MAGIC
}

func openParent(p string) (int, string, error) {
	fd, err := unix.Open(filepath.Dir(p), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", err
	}
	return fd, filepath.Base(p), nil
}

func createSubvolume(p string) error {
	pfd, name, err := openParent(p)
	if err != nil {
		return fmt.Errorf("create subvolume %s: %w", p, err)
	}
	defer unix.Close(pfd)
	if err := ioctlSubvolCreate(pfd, name); err != nil {
		return fmt.Errorf("create subvolume %s: %w", p, err)
	}
	return nil
}

func snapshotSubvolume(src, dst string, readOnly bool) error {
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	defer unix.Close(sfd)
	pfd, name, err := openParent(dst)
	if err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	defer unix.Close(pfd)
	if err := ioctlSnapCreate(pfd, sfd, name, readOnly); err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	return nil
}

func setSubvolumeReadOnly(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("seal subvolume %s: %w", p, err)
	}
	defer unix.Close(fd)
	flags, err := ioctlSubvolGetFlags(fd)
	if err == nil {
		err = ioctlSubvolSetFlags(fd, flags|btrfsSubvolReadOnly)
	}
	if err != nil {
		return fmt.Errorf("seal subvolume %s: %w", p, err)
	}
	return nil
}

func destroySubvolume(dirfd int, name string) error {
	if err := ioctlSnapDestroy(dirfd, name); err != nil {
		return fmt.Errorf("destroy subvolume %s: %w", name, err)
	}
	return nil
}
