package archive

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// CopyTree copies the tree under src into dst, an existing empty
// directory, keeping owners (as root), modes, xattrs, times, hard links,
// symlinks (verbatim) and device nodes. Regular files are reflinked where
// the filesystem can (btrfs, XFS) and copied with copy_file_range(2)
// otherwise. No symlink is followed. It returns the bytes of file content.
func CopyTree(ctx context.Context, src, dst string) (int64, error) {
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("copy tree: open %s: %w", src, err)
	}
	defer unix.Close(sfd)
	dfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("copy tree: open %s: %w", dst, err)
	}
	defer unix.Close(dfd)
	c := &treeCopier{ctx: ctx, dstRoot: dfd, links: map[devIno]string{}, isRoot: os.Geteuid() == 0}
	if err := c.dir(sfd, dfd, ""); err != nil {
		return c.size, fmt.Errorf("copy tree %s to %s: %w", src, dst, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return c.size, err
	}
	if err := copyMeta(sfd, &st, procFd(dfd), c.isRoot); err != nil {
		return c.size, fmt.Errorf("copy tree %s to %s: %w", src, dst, err)
	}
	return c.size, nil
}

type devIno struct{ dev, ino uint64 }

type treeCopier struct {
	ctx     context.Context
	dstRoot int
	links   map[devIno]string // first copy of a multiply linked inode
	isRoot  bool
	size    int64
}

func (c *treeCopier) dir(sfd, dfd int, rel string) error {
	names, err := readDirNames(sfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		p := n
		if rel != "" {
			p = rel + "/" + n
		}
		if err := c.entry(sfd, dfd, n, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func (c *treeCopier) entry(sfd, dfd int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		csfd, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(csfd)
		cdfd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(cdfd)
		if err := c.dir(csfd, cdfd, rel); err != nil {
			return err
		}
		return copyMeta(csfd, &st, procFd(cdfd), c.isRoot)
	}
	key := devIno{uint64(st.Dev), st.Ino}
	if st.Nlink > 1 {
		if first, ok := c.links[key]; ok {
			// first names a directory chain this copy created: no symlinks.
			return unix.Linkat(c.dstRoot, first, dfd, name, 0)
		}
	}
	fd, err := unix.Openat(sfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	n, err := copyEntry(fd, &st, dfd, name, c.isRoot)
	c.size += n
	if err != nil {
		return err
	}
	if st.Nlink > 1 {
		c.links[key] = rel
	}
	return nil
}
