package pathrs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// procRootIno is the inode number of the root directory of every procfs.
const procRootIno = 1

// resolver walks a path one component at a time from a root directory,
// holding an O_PATH descriptor for each directory on the way so that ".."
// is a pop of that stack and can never climb above root.
type resolver struct {
	root     int      // descriptor of the root directory, not owned
	fds      []int    // fds[0] is root; the rest are owned
	names    []string // names[i] is the component that opened fds[i+1]
	links    int      // symlinks followed so far
	resolved string   // after make: the symlink-free path of the result
}

func newResolver(root int) *resolver {
	return &resolver{root: root, fds: []int{root}}
}

func (r *resolver) top() int { return r.fds[len(r.fds)-1] }

func (r *resolver) push(fd int, name string) {
	r.fds = append(r.fds, fd)
	r.names = append(r.names, name)
}

// pop goes to the parent directory; at root it stays at root.
func (r *resolver) pop() {
	if len(r.fds) == 1 {
		return
	}
	unix.Close(r.top())
	r.fds = r.fds[:len(r.fds)-1]
	r.names = r.names[:len(r.names)-1]
}

// reset goes back to root.
func (r *resolver) reset() {
	for len(r.fds) > 1 {
		r.pop()
	}
}

func (r *resolver) close() { r.reset() }

func (r *resolver) current(name string) string {
	n := append(append([]string{}, r.names...), name)
	return "/" + strings.Join(n, "/")
}

// follow reads the symlink linkFd and returns the components still to walk:
// its target followed by rest. An absolute target restarts at root.
func (r *resolver) follow(linkFd int, rest []string) ([]string, error) {
	r.links++
	if r.links > maxSymlinks {
		return nil, unix.ELOOP
	}
	if err := r.refuseMagic(linkFd); err != nil {
		return nil, err
	}
	target, err := readlinkFd(linkFd)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(target, "/") {
		r.reset()
	}
	return append(splitPath(target), rest...), nil
}

// refuseMagic fails with ELOOP for procfs magic links, as openat2 does with
// RESOLVE_NO_MAGICLINKS. The only plain symlinks in procfs (self,
// thread-self, mounts, net) sit in its root directory; everything deeper
// (fd/N, cwd, root, exe, ns/*, map_files/*) is magic.
func (r *resolver) refuseMagic(linkFd int) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(linkFd, &fs); err != nil {
		return err
	}
	if fs.Type != unix.PROC_SUPER_MAGIC {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(r.top(), &st); err != nil {
		return err
	}
	if st.Ino != procRootIno {
		return unix.ELOOP
	}
	return nil
}

func readlinkFd(fd int) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

func probe(dirFd int, name string) (int, *unix.Stat_t, error) {
	fd, err := unix.Openat(dirFd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, &st, nil
}

// open resolves path and opens it with flags (which include O_CLOEXEC).
func (r *resolver) open(path string, flags int, mode uint32) (int, error) {
	mustDir := strings.HasSuffix(path, "/")
	rest := splitPath(path)
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == ".." {
			r.pop()
			continue
		}
		last := len(rest) == 0
		fd, st, err := probe(r.top(), name)
		if err != nil {
			if last && err == unix.ENOENT && flags&unix.O_CREAT != 0 {
				return unix.Openat(r.top(), name, flags|unix.O_NOFOLLOW, mode)
			}
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if last && flags&unix.O_NOFOLLOW != 0 {
				if flags&unix.O_PATH != 0 {
					return fd, nil
				}
				unix.Close(fd)
				return -1, unix.ELOOP
			}
			rest, err = r.follow(fd, rest)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
		case unix.S_IFDIR:
			r.push(fd, name)
		default:
			unix.Close(fd)
			if !last || mustDir {
				return -1, unix.ENOTDIR
			}
			return openSame(r.top(), name, flags, mode, st)
		}
	}
	return unix.Openat(r.top(), ".", flags, mode)
}

// openSame opens name in dirFd with flags and checks that it is still the
// inode st described when it was probed.
func openSame(dirFd int, name string, flags int, mode uint32, st *unix.Stat_t) (int, error) {
	fd, err := unix.Openat(dirFd, name, flags|unix.O_NOFOLLOW, mode)
	if err != nil {
		return -1, err
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return -1, unix.EAGAIN
	}
	return fd, nil
}

// make resolves path, creating what is missing: directories for every
// component with opMkdir, directories then a regular file for the last
// component with opCreate. It returns an O_PATH descriptor of the result.
func (r *resolver) make(path string, op makeOp, mode uint32) (int, error) {
	rest := splitPath(path)
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == ".." {
			r.pop()
			continue
		}
		last := len(rest) == 0
		fd, st, err := probe(r.top(), name)
		if err == unix.ENOENT {
			if err := r.create(name, op == opCreate && last, op, mode); err != nil {
				return -1, err
			}
			fd, st, err = probe(r.top(), name)
		}
		if err != nil {
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			rest, err = r.follow(fd, rest)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
		case unix.S_IFDIR:
			r.push(fd, name)
		default:
			if !last || op != opCreate {
				unix.Close(fd)
				return -1, unix.ENOTDIR
			}
			r.resolved = r.current(name)
			return fd, nil
		}
	}
	if op == opCreate {
		return -1, unix.EISDIR
	}
	r.resolved = "/" + strings.Join(r.names, "/")
	return unix.Openat(r.top(), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

func (r *resolver) create(name string, file bool, op makeOp, mode uint32) error {
	if file {
		fd, err := unix.Openat(r.top(), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err == nil {
			return unix.Close(fd)
		}
		if err == unix.EEXIST {
			return nil
		}
		return err
	}
	dirMode := mode
	if op == opCreate {
		dirMode = 0o755
	}
	if err := unix.Mkdirat(r.top(), name, dirMode); err != nil && err != unix.EEXIST {
		return err
	}
	return nil
}
