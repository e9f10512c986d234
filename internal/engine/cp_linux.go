package engine

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"cove/internal/engine/archive"
	"cove/internal/engine/container"
	"cove/internal/pathrs"
)

// withRootfs runs fn on the container's root filesystem: the live mount of
// a running container, or its layer mounted for the call.
func (e *Engine) withRootfs(r *container.Record, fn func(rootfs string) error) error {
	if st := e.State(r); st.Running {
		return fn(filepath.Join(e.RunDir(r.ID), "rootfs"))
	}
	unlock, err := e.lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	snaps, err := e.Snapshots()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(e.cfg.RunRoot, "cp-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := snaps.Mount(r.ID, dir); err != nil {
		return fmt.Errorf("mount container layer: %w", err)
	}
	defer snaps.Unmount(dir)
	return fn(dir)
}

// CopyFrom copies src, a path inside the container (resolved inside its
// root: symlinks cannot lead out), to dst on the host, docker cp's way: into
// dst if dst is an existing directory, else as dst.
func (e *Engine) CopyFrom(ctx context.Context, r *container.Record, src, dst string) error {
	return e.withRootfs(r, func(rootfs string) error {
		f, err := pathrs.OpenInRoot(rootfs, src, unix.O_PATH)
		if err != nil {
			return fmt.Errorf("%s:%s: %w", r.Name, src, err)
		}
		defer f.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return err
		}
		target := dst
		if info, err := os.Stat(dst); err == nil && info.IsDir() {
			base := path.Base(path.Clean("/" + src))
			if base == "/" {
				base = "."
			}
			target = filepath.Join(dst, base)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.MkdirAll(target, os.FileMode(st.Mode&0o7777)); err != nil {
				return err
			}
			_, err := archive.CopyTree(ctx, pathrs.ProcfdPath(f), target)
			return err
		case unix.S_IFREG:
			in, err := pathrs.Reopen(f, unix.O_RDONLY)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(st.Mode&0o777))
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return fmt.Errorf("%s:%s: not a regular file or directory", r.Name, src)
	})
}

// CopyTo copies src on the host into the container at dst: into dst if it
// is an existing directory in the container, else as dst. Entries are
// written by file descriptor under the resolved directory (archive.Apply),
// so symlinks in the container, even swapped while we copy, cannot redirect
// a write outside its root.
func (e *Engine) CopyTo(ctx context.Context, r *container.Record, src, dst string) error {
	info, err := os.Lstat(src)
	if err != nil {
		return err
	}
	return e.withRootfs(r, func(rootfs string) error {
		dir, name := dst, filepath.Base(filepath.Clean(src))
		if d, err := pathrs.OpenInRoot(rootfs, dst, unix.O_PATH|unix.O_DIRECTORY); err == nil {
			d.Close()
		} else if strings.HasSuffix(dst, "/") {
			return fmt.Errorf("%s:%s: not an existing directory", r.Name, dst)
		} else {
			dir, name = path.Dir(path.Clean("/"+dst)), path.Base(dst)
		}
		df, err := pathrs.OpenInRoot(rootfs, dir, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("%s:%s: %w", r.Name, dir, err)
		}
		defer df.Close()
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(pw, src, name, info)) }()
		_, err = archive.Apply(ctx, pathrs.ProcfdPath(df), pr, archive.Options{Layer: "cp " + src})
		pr.CloseWithError(err)
		return err
	})
}

// writeTar writes src (a file or tree) as a tar whose top entry is name.
func writeTar(w io.Writer, src, name string, top os.FileInfo) error {
	tw := tar.NewWriter(w)
	add := func(p string, info os.FileInfo, rel string) error {
		link := ""
		if info.Mode()&os.ModeSymlink != 0 {
			var err error
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if info.IsDir() {
			h.Name += "/"
		}
		if strings.HasPrefix(path.Base(rel), ".wh.") {
			return fmt.Errorf("%s: names starting with .wh. cannot be copied", p)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	}
	if !top.IsDir() {
		if err := add(src, top, name); err != nil {
			return err
		}
		return tw.Close()
	}
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return add(p, info, path.Join(name, filepath.ToSlash(rel)))
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
