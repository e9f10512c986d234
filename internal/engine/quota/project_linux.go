package quota

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// projectDriver gives each capped directory its own project id, inherited
// by everything created below it (FS_XFLAG_PROJINHERIT), and a hard block
// limit for that project through quotactl_fd(2). It needs XFS or ext4
// mounted with prjquota on a kernel with quota support; the development
// kernel lacks it (no CONFIG_QFMT_V2, no XFS_QUOTA), so this driver is
// detected and skipped there and is untested.
type projectDriver struct{}

func (projectDriver) Name() string { return Project }

// projectSupported checks that project quotas are enforced on the
// filesystem holding dir.
func projectSupported(dir string) error {
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	if st.Type != unix.EXT4_SUPER_MAGIC && st.Type != unix.XFS_SUPER_MAGIC {
		return fmt.Errorf("project quotas need ext4 or XFS: %w", ErrNotSupported)
	}
	if err := projectInfo(fd); err != nil {
		return fmt.Errorf("project quotas not enabled (%v): %w", err, ErrNotSupported)
	}
	return nil
}

// newProjectID picks a random id in [2^20, 2^31) that holds nothing yet.
func newProjectID(fd int) (uint32, error) {
	for range 32 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		id := binary.LittleEndian.Uint32(b[:])%(1<<31-1<<20) + 1<<20
		q, err := projectGet(fd, id)
		if err == unix.ESRCH || err == unix.ENOENT || (err == nil && q.curinodes == 0 && q.curspace == 0 && q.bhardlimit == 0) {
			return id, nil
		}
		if err != nil {
			return 0, fmt.Errorf("project quota of %d: %w", id, err)
		}
	}
	return 0, fmt.Errorf("no free project id found")
}

func (d projectDriver) Create(dir string, size int64) (err error) {
	if err := checkSize(size); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("project quota: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	id, err := newProjectID(fd)
	if err != nil {
		return fmt.Errorf("project quota: %w", err)
	}
	x, err := getFsxattr(fd)
	if err != nil {
		return fmt.Errorf("project quota: FS_IOC_FSGETXATTR %s: %w", dir, err)
	}
	x.projid = id
	x.xflags |= fsXflagProjInherit
	if err := setFsxattr(fd, x); err != nil {
		return fmt.Errorf("project quota: FS_IOC_FSSETXATTR %s: %w", dir, err)
	}
	if err := projectSetLimit(fd, id, size); err != nil {
		return fmt.Errorf("project quota: limit %s: %w", dir, err)
	}
	return nil
}

func (projectDriver) Activate(string) error   { return nil }
func (projectDriver) Deactivate(string) error { return nil }

func projectOf(dir string) (int, uint32, error) {
	fd, err := openDir(dir)
	if err != nil {
		return -1, 0, err
	}
	x, err := getFsxattr(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("project quota: FS_IOC_FSGETXATTR %s: %w", dir, err)
	}
	if x.projid == 0 {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("project quota: %s has no project id: %w", dir, ErrInvalid)
	}
	return fd, x.projid, nil
}

func (d projectDriver) Resize(dir string, size int64) error {
	if err := checkSize(size); err != nil {
		return err
	}
	u, err := d.Usage(dir)
	if err != nil {
		return err
	}
	if u.Used > size {
		return fmt.Errorf("resize %s to %s: %s in use: %w", dir, HumanSize(size), HumanSize(u.Used), ErrBelowUsage)
	}
	fd, id, err := projectOf(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := projectSetLimit(fd, id, size); err != nil {
		return fmt.Errorf("project quota: limit %s: %w", dir, err)
	}
	return nil
}

func (projectDriver) Usage(dir string) (Usage, error) {
	fd, id, err := projectOf(dir)
	if err != nil {
		return Usage{}, err
	}
	defer unix.Close(fd)
	q, err := projectGet(fd, id)
	if err != nil {
		return Usage{}, fmt.Errorf("project quota of %s: %w", dir, err)
	}
	return Usage{Used: int64(q.curspace), Inodes: int64(q.curinodes), Limit: int64(q.bhardlimit) * 1024}, nil
}

func (projectDriver) Remove(dir string) error {
	if fd, id, err := projectOf(dir); err == nil {
		projectSetLimit(fd, id, 0)
		unix.Close(fd)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("project quota: %w", err)
	}
	return nil
}
