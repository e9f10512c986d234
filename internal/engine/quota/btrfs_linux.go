package quota

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// btrfsDriver makes each capped directory a subvolume and limits its
// qgroup's exclusive bytes: what the tree holds that no other subvolume
// shares, so a writable snapshot of an image is charged only for what it
// writes. Quota accounting is enabled on the filesystem the first time.
// The kernel updates qgroup numbers at transaction commit, so Usage may
// lag writes by up to the commit interval (30 s by default).
type btrfsDriver struct{}

func (btrfsDriver) Name() string { return Btrfs }

func btrfsSupported(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	if st.Type != unix.BTRFS_SUPER_MAGIC {
		return fmt.Errorf("%s is not on btrfs: %w", dir, ErrNotSupported)
	}
	return nil
}

func openDir(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return fd, nil
}

// btrfsSysfs returns /sys/fs/btrfs/<fsid> of the filesystem fd is on.
func btrfsSysfs(fd int) (string, error) {
	id, err := btrfsFsid(fd)
	if err != nil {
		return "", fmt.Errorf("btrfs fs info: %w", err)
	}
	h := fmt.Sprintf("%x", id[:])
	return filepath.Join("/sys/fs/btrfs", h[0:8]+"-"+h[8:12]+"-"+h[12:16]+"-"+h[16:20]+"-"+h[20:32]), nil
}

// EnableBtrfsQuota turns on qgroup accounting on the btrfs filesystem
// holding dir unless it is on, and waits for the initial rescan.
func EnableBtrfsQuota(dir string) error {
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return enableBtrfsQuota(fd)
}

func enableBtrfsQuota(fd int) error {
	sys, err := btrfsSysfs(fd)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(sys, "qgroups")); err == nil {
		return nil
	}
	if err := btrfsQuotaEnable(fd); err != nil {
		return fmt.Errorf("enable btrfs quota: %w", err)
	}
	if err := btrfsQuotaRescanWait(fd); err != nil && err != unix.EINVAL {
		return fmt.Errorf("wait for btrfs quota rescan: %w", err)
	}
	return nil
}

// LimitBtrfsSubvolume caps the exclusive bytes of the existing subvolume
// dir at size (0 lifts the cap), enabling quotas first if needed.
func LimitBtrfsSubvolume(dir string, size int64) error {
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := enableBtrfsQuota(fd); err != nil {
		return err
	}
	if err := btrfsQgroupLimitExcl(fd, uint64(size)); err != nil {
		return fmt.Errorf("btrfs qgroup limit %s: %w", dir, err)
	}
	return nil
}

func (btrfsDriver) Create(dir string, size int64) error {
	if err := checkSize(size); err != nil {
		return err
	}
	pfd, err := openDir(filepath.Dir(dir))
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := enableBtrfsQuota(pfd); err != nil {
		return err
	}
	if err := btrfsSubvolCreate(pfd, filepath.Base(dir)); err != nil {
		return fmt.Errorf("create subvolume %s: %w", dir, err)
	}
	if err := LimitBtrfsSubvolume(dir, size); err != nil {
		btrfsSnapDestroy(pfd, filepath.Base(dir))
		return err
	}
	return nil
}

func (btrfsDriver) Activate(string) error   { return nil }
func (btrfsDriver) Deactivate(string) error { return nil }

func (d btrfsDriver) Resize(dir string, size int64) error {
	if err := checkSize(size); err != nil {
		return err
	}
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	err = enableBtrfsQuota(fd) // a subvolume made without a limit
	unix.Syncfs(fd)            // commit, so the qgroup numbers are current
	unix.Close(fd)
	if err != nil {
		return err
	}
	u, err := d.Usage(dir)
	if err != nil {
		return err
	}
	if u.Used > size {
		return fmt.Errorf("resize %s to %s: %s in use: %w", dir, HumanSize(size), HumanSize(u.Used), ErrBelowUsage)
	}
	return LimitBtrfsSubvolume(dir, size)
}

// Usage reads the subvolume's qgroup from sysfs.
func (btrfsDriver) Usage(dir string) (Usage, error) {
	return BtrfsUsage(dir)
}

// BtrfsUsage returns the exclusive bytes and the exclusive limit of the
// subvolume dir from its qgroup (quotas must be enabled).
func BtrfsUsage(dir string) (Usage, error) {
	var u Usage
	fd, err := openDir(dir)
	if err != nil {
		return u, err
	}
	defer unix.Close(fd)
	id, err := btrfsSubvolID(fd)
	if err != nil {
		return u, fmt.Errorf("btrfs subvolume id of %s: %w", dir, err)
	}
	sys, err := btrfsSysfs(fd)
	if err != nil {
		return u, err
	}
	q := filepath.Join(sys, "qgroups", "0_"+strconv.FormatUint(id, 10))
	if u.Used, err = readInt(filepath.Join(q, "exclusive")); err != nil {
		return u, fmt.Errorf("qgroup of %s: %w", dir, err)
	}
	if u.Limit, err = readInt(filepath.Join(q, "max_exclusive")); err != nil {
		return u, fmt.Errorf("qgroup of %s: %w", dir, err)
	}
	return u, nil
}

func readInt(p string) (int64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func (btrfsDriver) Remove(dir string) error {
	pfd, err := openDir(filepath.Dir(dir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer unix.Close(pfd)
	var id uint64
	if fd, err := openDir(dir); err == nil {
		id, _ = btrfsSubvolID(fd)
		unix.Close(fd)
	} else if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := btrfsSnapDestroy(pfd, filepath.Base(dir)); err != nil {
		// Nested subvolumes: an empty subvolume root can be rmdir'ed.
		if rerr := os.RemoveAll(dir); rerr != nil {
			return fmt.Errorf("remove subvolume %s: %w", dir, err)
		}
	}
	if id != 0 {
		btrfsQgroupDestroy(pfd, id) // the kernel may still be dropping it; harmless to leave
	}
	return nil
}
