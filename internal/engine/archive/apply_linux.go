package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/pathrs"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
	// maxDirCache bounds the parent directory descriptors kept open.
	maxDirCache = 128
)

// Apply unpacks the uncompressed layer tar r into root, an existing
// directory, following the rules in the package documentation, and returns
// the bytes of file content written. After the tar's end it reads r to EOF
// so that a digest-verifying reader sees the whole stream.
func Apply(ctx context.Context, root string, r io.Reader, opts Options) (int64, error) {
	if opts.MaxEntrySize <= 0 {
		opts.MaxEntrySize = DefaultMaxEntrySize
	}
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &Error{Layer: opts.Layer, Op: "open root " + root, Err: err}
	}
	a := &applier{
		ctx:    ctx,
		root:   root,
		rootFd: rootFd,
		opts:   opts,
		isRoot: os.Geteuid() == 0,
		dirs:   map[string]int{},
		seen:   map[string]struct{}{},
		whited: map[string]struct{}{},
		buf:    make([]byte, 1<<20),
	}
	defer a.close()
	tr := tar.NewReader(ctxReader{ctx, r})
	for {
		if err := ctx.Err(); err != nil {
			return a.size, &Error{Layer: opts.Layer, Err: err}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.size, &Error{Layer: opts.Layer, Op: "read tar", Err: err}
		}
		if err := a.entry(hdr, tr); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return a.size, err
			}
			return a.size, &Error{Layer: opts.Layer, Entry: hdr.Name, Err: err}
		}
	}
	if err := a.finishDirs(); err != nil {
		return a.size, err
	}
	if _, err := io.CopyBuffer(io.Discard, ctxReader{ctx, r}, a.buf); err != nil {
		return a.size, &Error{Layer: opts.Layer, Op: "read after tar end", Err: err}
	}
	return a.size, nil
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type dirMeta struct {
	name         string
	mode         uint32
	atime, mtime time.Time
}

type applier struct {
	ctx    context.Context
	root   string
	rootFd int
	opts   Options
	isRoot bool
	// dirs caches O_PATH descriptors of parent directories by clean path.
	// Cleared whenever anything is removed or replaced, so a cached path
	// always names the directory it did when it was opened.
	dirs     map[string]int
	seen     map[string]struct{} // paths this layer created
	whited   map[string]struct{} // paths this layer whited out (overlay)
	dirMetas []dirMeta
	buf      []byte
	size     int64
}

func (a *applier) close() {
	a.dropDirs()
	unix.Close(a.rootFd)
}

func (a *applier) dropDirs() {
	for _, fd := range a.dirs {
		unix.Close(fd)
	}
	clear(a.dirs)
}

func (a *applier) errf(hdr *tar.Header, op string, err error) error {
	return &Error{Layer: a.opts.Layer, Entry: hdr.Name, Op: op, Err: err}
}

func (a *applier) entry(hdr *tar.Header, tr *tar.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return a.errf(hdr, "name", err)
	}
	if hdr.Size > a.opts.MaxEntrySize || hdr.Size < 0 {
		return a.errf(hdr, "size", fmt.Errorf("%d bytes, limit %d: %w", hdr.Size, a.opts.MaxEntrySize, ErrTooLarge))
	}
	dir, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(hdr, dir, base)
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return a.errf(hdr, "root", fmt.Errorf("the root can only be a directory: %w", ErrInvalidHeader))
		}
		a.dirMetas = append(a.dirMetas, dirMeta{"", uint32(hdr.Mode) & 0o7777, hdr.AccessTime, hdr.ModTime})
		return a.meta(hdr, a.rootFd, "", true)
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeGNUSparse, tar.TypeCont:
		// archive/tar expands old GNU sparse files; a contiguous file is
		// a regular one.
		hdr.Typeflag = tar.TypeReg
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return a.errf(hdr, "type", fmt.Errorf("%q: %w", hdr.Typeflag, ErrUnsupportedType))
	}
	if hdr.Mode&0o170000 == 0o140000 { // a socket: cannot be unpacked
		return nil
	}
	if (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock) && !a.isRoot {
		return nil
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) >= 1<<32-1 || int64(hdr.Gid) >= 1<<32-1 {
		return a.errf(hdr, "owner", fmt.Errorf("uid %d gid %d: %w", hdr.Uid, hdr.Gid, ErrInvalidHeader))
	}
	pfd, err := a.parent(dir)
	if err != nil {
		return a.errf(hdr, "parent directory", err)
	}
	_, wasWhited := a.whited[name]
	a.markSeen(name)
	mode := uint32(hdr.Mode) & 0o7777
	if hdr.Typeflag == tar.TypeLink {
		if pfd, _, err = a.replace(hdr, dir, pfd, base); err != nil {
			return err
		}
		return a.hardlink(hdr, name, pfd, base)
	}
	// Create first and look at what is in the way only on EEXIST: one
	// syscall less per entry in the common case.
	fd := -1
	create := func(pfd int) (op string, err error) {
		switch hdr.Typeflag {
		case tar.TypeDir:
			return "mkdir", unix.Mkdirat(pfd, base, 0o700)
		case tar.TypeReg:
			fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			return "create", err
		case tar.TypeSymlink:
			return "symlink", unix.Symlinkat(hdr.Linkname, pfd, base)
		}
		typ := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			typ = unix.S_IFCHR
		case tar.TypeBlock:
			typ = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		return "mknod", unix.Mknodat(pfd, base, typ|mode&0o777, int(dev))
	}
	op, err := create(pfd)
	if err == unix.EEXIST {
		var whiteout bool
		if pfd, whiteout, err = a.replace(hdr, dir, pfd, base); err != nil {
			return err
		}
		wasWhited = wasWhited || whiteout
		op, err = create(pfd)
		if err == unix.EEXIST && hdr.Typeflag == tar.TypeDir {
			err = nil // replace kept the directory there
		}
	}
	if err != nil {
		return a.errf(hdr, op, err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if wasWhited && a.opts.Whiteouts == WhiteoutOverlay {
			// Deleted then re-created in this layer: the lower
			// directory's content must stay hidden.
			if err := unix.Lsetxattr(procAt(pfd, base), opaqueXattr, []byte("y"), 0); err != nil {
				return a.errf(hdr, "set opaque", err)
			}
		}
		a.dirMetas = append(a.dirMetas, dirMeta{name, mode, hdr.AccessTime, hdr.ModTime})
		return a.meta(hdr, pfd, base, true)
	case tar.TypeReg:
		return a.regular(hdr, tr, fd, pfd, base, mode)
	}
	if err := a.meta(hdr, pfd, base, false); err != nil {
		return err
	}
	return a.times(hdr, pfd, base)
}

// replace removes what is at base in pfd unless both it and the entry are
// directories (a directory entry only updates an existing one), and
// returns the parent's descriptor (looked up again if cached paths may
// have gone through what was removed) and whether it was a whiteout.
func (a *applier) replace(hdr *tar.Header, dir string, pfd int, base string) (int, bool, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return pfd, false, nil
		}
		return -1, false, a.errf(hdr, "stat", err)
	}
	typ := st.Mode & unix.S_IFMT
	if typ == unix.S_IFDIR && hdr.Typeflag == tar.TypeDir {
		return pfd, false, nil
	}
	if err := removeAllAt(pfd, base); err != nil {
		return -1, false, a.errf(hdr, "replace", err)
	}
	if typ == unix.S_IFDIR || typ == unix.S_IFLNK {
		a.dropDirs()
		var err error
		if pfd, err = a.parent(dir); err != nil {
			return -1, false, a.errf(hdr, "parent directory", err)
		}
	}
	return pfd, isWhiteout(&st), nil
}

// markSeen records that this layer holds p and so its parent directories.
func (a *applier) markSeen(p string) {
	for p != "" {
		if _, ok := a.seen[p]; ok {
			return
		}
		a.seen[p] = struct{}{}
		p, _ = splitName(p)
	}
}

// regular writes a regular file's content to fd, just created as base in
// pfd, then its metadata.
func (a *applier) regular(hdr *tar.Header, tr *tar.Reader, fd, pfd int, base string, mode uint32) error {
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	n, err := io.CopyBuffer(fileWriter{f}, tr, a.buf)
	a.size += n
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return a.errf(hdr, "read content", fmt.Errorf("tar truncated after %d of %d bytes: %w", n, hdr.Size, err))
		}
		return a.errf(hdr, "write", err)
	}
	if n != hdr.Size {
		return a.errf(hdr, "read content", fmt.Errorf("got %d of %d bytes: %w", n, hdr.Size, io.ErrUnexpectedEOF))
	}
	if a.isRoot {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return a.errf(hdr, "chown", err)
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return a.errf(hdr, "chmod", err)
	}
	if err := a.xattrs(hdr, procFd(fd), true, false); err != nil {
		return err
	}
	return a.times(hdr, pfd, base)
}

// fileWriter hides *os.File's ReadFrom so io.CopyBuffer uses our buffer
// and reports errors from write(2) as they are (ENOSPC).
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return n, err
}

// meta applies ownership and xattrs (and, for non-directories, the mode)
// to base in pfd ("" for pfd itself). Directory modes wait for finishDirs
// so that a read-only directory can still be filled.
func (a *applier) meta(hdr *tar.Header, pfd int, base string, dir bool) error {
	symlink := hdr.Typeflag == tar.TypeSymlink
	if a.isRoot {
		flags := unix.AT_SYMLINK_NOFOLLOW
		if base == "" {
			flags |= unix.AT_EMPTY_PATH
		}
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, flags); err != nil {
			return a.errf(hdr, "chown", err)
		}
	}
	if !dir && !symlink {
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return a.errf(hdr, "chmod", err)
		}
	}
	return a.xattrs(hdr, procAt(pfd, base), base == "", symlink)
}

// xattrs applies the entry's SCHILY.xattr records to p, a /proc/self/fd
// path; follow says whether p's last component is the magic link itself.
func (a *applier) xattrs(hdr *tar.Header, p string, follow, symlink bool) error {
	set := unix.Lsetxattr
	if follow {
		set = unix.Setxattr
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || !keepXattr(name, a.isRoot) {
			continue
		}
		err := set(p, name, []byte(v), 0)
		if err == nil || err == unix.ENOTSUP || (symlink && err == unix.EPERM) {
			continue
		}
		return a.errf(hdr, "set xattr "+name, err)
	}
	return nil
}

// keepXattr says whether an xattr from a layer is applied: trusted.* and
// user.overlay.* (overlayfs with userxattr) would forge overlayfs metadata
// (opaque, redirect, metacopy) and security.selinux belongs to the host.
func keepXattr(name string, isRoot bool) bool {
	switch {
	case strings.HasPrefix(name, "trusted."), strings.HasPrefix(name, "user.overlay."), name == "security.selinux":
		return false
	case strings.HasPrefix(name, "security."):
		return isRoot
	}
	return true
}

func (a *applier) times(hdr *tar.Header, pfd int, base string) error {
	ts := timespecs(hdr.AccessTime, hdr.ModTime)
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return a.errf(hdr, "set times", err)
	}
	return nil
}

func timespecs(atime, mtime time.Time) []unix.Timespec {
	if atime.IsZero() {
		atime = mtime
	}
	return []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

// finishDirs sets directory modes and times once all their children
// exist, deepest last-seen first. A directory replaced later in the layer
// by something else is skipped.
func (a *applier) finishDirs() error {
	for i := len(a.dirMetas) - 1; i >= 0; i-- {
		d := a.dirMetas[i]
		f, err := pathrs.OpenInRoot(a.root, d.name, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				continue
			}
			return &Error{Layer: a.opts.Layer, Entry: d.name, Op: "open directory", Err: err}
		}
		var st unix.Stat_t
		err = unix.Fstat(int(f.Fd()), &st)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			p := pathrs.ProcfdPath(f)
			if err = unix.Fchmodat(unix.AT_FDCWD, p, d.mode, 0); err == nil {
				err = unix.UtimesNanoAt(unix.AT_FDCWD, p, timespecs(d.atime, d.mtime), 0)
			}
		}
		f.Close()
		if err != nil {
			return &Error{Layer: a.opts.Layer, Entry: d.name, Op: "set directory mode and times", Err: err}
		}
	}
	return nil
}

// parent returns an O_PATH descriptor of the directory dir inside the root,
// creating missing directories (0755, or the metadata of the same
// directory in a lower layer). The descriptor belongs to the cache.
func (a *applier) parent(dir string) (int, error) {
	if dir == "" {
		return a.rootFd, nil
	}
	if fd, ok := a.dirs[dir]; ok {
		return fd, nil
	}
	f, err := pathrs.OpenInRoot(a.root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		f, err = a.mkdirs(dir)
	}
	if err != nil {
		return -1, err
	}
	if len(a.dirs) >= maxDirCache {
		a.dropDirs()
	}
	fd := int(f.Fd())
	// The cache owns the descriptor from now on.
	nfd, err := unix.Dup(fd)
	f.Close()
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(nfd)
	a.dirs[dir] = nfd
	return nfd, nil
}

// mkdirs creates the missing directories of dir one by one.
func (a *applier) mkdirs(dir string) (*os.File, error) {
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		f, err := pathrs.OpenInRoot(a.root, p, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			if i == len(parts)-1 {
				return f, nil
			}
			f.Close()
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return nil, err
		}
		f, err = pathrs.MkdirAllInRoot(a.root, p, 0o755)
		if err != nil {
			return nil, err
		}
		if a.opts.Whiteouts == WhiteoutOverlay {
			if err := a.copyLowerDirMeta(p, f); err != nil {
				f.Close()
				return nil, err
			}
		}
		if i == len(parts)-1 {
			return f, nil
		}
		f.Close()
	}
	return nil, unix.ENOENT
}

// copyLowerDirMeta gives a directory made implicitly in an overlay upper
// layer the owner, mode and times of the same directory below, so that
// the merged view keeps them.
func (a *applier) copyLowerDirMeta(p string, f *os.File) error {
	lfd, err := findInLayers(a.opts.Lowers, p)
	if err != nil {
		return nil
	}
	defer unix.Close(lfd)
	var st unix.Stat_t
	if err := unix.Fstat(lfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return err
	}
	return copyMeta(lfd, &st, pathrs.ProcfdPath(f), a.isRoot)
}

// hardlink links name to an entry unpacked before it, copying the target
// up from a lower layer first in overlay mode.
func (a *applier) hardlink(hdr *tar.Header, name string, pfd int, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return a.errf(hdr, "hard link to "+hdr.Linkname, err)
	}
	if target == "" || target == name {
		return a.errf(hdr, "hard link to "+hdr.Linkname, ErrLinkTarget)
	}
	tdir, tbase := splitName(target)
	tfd, err := a.lookupDir(tdir)
	if err == nil {
		var st unix.Stat_t
		err = unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil && isWhiteout(&st) {
			err = unix.ENOENT
		}
	}
	if errors.Is(err, unix.ENOENT) && a.opts.Whiteouts == WhiteoutOverlay {
		err = a.copyUp(target)
		if err == nil {
			tfd, err = a.lookupDir(tdir)
		}
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return a.errf(hdr, "hard link to "+hdr.Linkname, ErrLinkTarget)
	}
	if err != nil {
		return a.errf(hdr, "hard link to "+hdr.Linkname, err)
	}
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		if err == unix.EPERM {
			err = fmt.Errorf("target is a directory or not linkable: %w", err)
		}
		return a.errf(hdr, "hard link to "+hdr.Linkname, err)
	}
	return nil
}

// lookupDir returns a cached O_PATH descriptor of an existing directory.
func (a *applier) lookupDir(dir string) (int, error) {
	if dir == "" {
		return a.rootFd, nil
	}
	if fd, ok := a.dirs[dir]; ok {
		return fd, nil
	}
	f, err := pathrs.OpenInRoot(a.root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	f.Close()
	return a.parent(dir)
}

// copyUp copies target from the merged lower layers into this layer, as
// overlayfs does before it links a lower file.
func (a *applier) copyUp(target string) error {
	layers := append([]string{a.root}, a.opts.Lowers...)
	sfd, err := findInLayers(layers, target)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	dir, base := splitName(target)
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("target is a directory: %w", unix.EPERM)
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil && err != unix.ENOENT {
		return err // a whiteout of target in this layer
	}
	n, err := copyEntry(sfd, &st, pfd, base, a.isRoot)
	a.size += n
	return err
}

// whiteout applies a ".wh." entry found in directory dir.
func (a *applier) whiteout(hdr *tar.Header, dir, base string) error {
	if base == whiteoutOpaque {
		return a.opaque(hdr, dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs)
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return a.errf(hdr, "whiteout", fmt.Errorf("bad whiteout name: %w", ErrInvalidHeader))
	}
	p := victim
	if dir != "" {
		p = dir + "/" + victim
	}
	if _, ok := a.seen[p]; ok {
		return nil // a whiteout hides lower layers only
	}
	if a.opts.Whiteouts == WhiteoutOverlay {
		pfd, err := a.parent(dir)
		if err != nil {
			return a.errf(hdr, "whiteout parent", err)
		}
		if err := unix.Mknodat(pfd, victim, unix.S_IFCHR, 0); err != nil && err != unix.EEXIST {
			return a.errf(hdr, "whiteout", err)
		}
		a.whited[p] = struct{}{}
		return nil
	}
	pfd, err := a.lookupDir(dir)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return a.errf(hdr, "whiteout parent", err)
	}
	if err := removeAllAt(pfd, victim); err != nil && err != unix.ENOENT {
		return a.errf(hdr, "whiteout", err)
	}
	a.dropDirs()
	return nil
}

// opaque applies ".wh..wh..opq": the lower content of dir is hidden, what
// this layer put there stays.
func (a *applier) opaque(hdr *tar.Header, dir string) error {
	if a.opts.Whiteouts == WhiteoutOverlay {
		pfd, err := a.parent(dir)
		if err != nil {
			return a.errf(hdr, "opaque directory", err)
		}
		if err := unix.Setxattr(procFd(pfd), opaqueXattr, []byte("y"), 0); err != nil {
			return a.errf(hdr, "set opaque", err)
		}
		return nil
	}
	pfd, err := a.lookupDir(dir)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return a.errf(hdr, "opaque directory", err)
	}
	if err := a.clearDir(pfd, dir); err != nil {
		return a.errf(hdr, "opaque directory", err)
	}
	a.dropDirs()
	return nil
}

// clearDir removes the entries of directory fd (at path dir) that this
// layer did not create, descending into those it did.
func (a *applier) clearDir(fd int, dir string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := n
		if dir != "" {
			p = dir + "/" + n
		}
		if _, ok := a.seen[p]; !ok {
			if err := removeAllAt(fd, n); err != nil && err != unix.ENOENT {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOTDIR || err == unix.ELOOP {
			continue
		}
		if err != nil {
			return err
		}
		err = a.clearDir(cfd, p)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}
