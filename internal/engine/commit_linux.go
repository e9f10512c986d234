package engine

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"cove/internal/engine/container"
	"cove/internal/engine/image"
	"cove/internal/engine/snapshot"
)

// CommitOptions configure Commit.
type CommitOptions struct {
	Author  string
	Message string
}

// Commit makes a new image named ref: the container's image plus one layer
// holding the container's changes (its overlay upper directory, whiteouts
// in OCI form). The image goes through a docker-archive and image.Load, so
// it is verified and stored like any loaded image. Only the overlay driver
// keeps a diff to commit.
func (e *Engine) Commit(ctx context.Context, r *container.Record, ref string, o CommitOptions) (*image.Image, error) {
	snaps, err := e.Snapshots()
	if err != nil {
		return nil, err
	}
	if snaps.Driver() != snapshot.DriverOverlay {
		return nil, fmt.Errorf("commit: %w (driver %s keeps no diff)", snapshot.ErrNotSupported, snaps.Driver())
	}
	upper := filepath.Join(snaps.Dir(), "active", r.ID, "fs")
	if _, err := os.Stat(upper); err != nil {
		return nil, fmt.Errorf("commit %s: container layer: %w", r.Name, err)
	}
	imgs, err := e.Images()
	if err != nil {
		return nil, err
	}
	base, err := imgs.Get(r.ImageID)
	if err != nil {
		return nil, fmt.Errorf("commit %s: image %s: %w", r.Name, r.Image, err)
	}
	work, err := os.MkdirTemp(e.cfg.Root, "commit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	// The base image as a docker-archive, unpacked.
	saved := filepath.Join(work, "base.tar")
	f, err := os.Create(saved)
	if err != nil {
		return nil, err
	}
	err = imgs.Save(ctx, []string{r.ImageID}, image.FormatDockerArchive, f, "")
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("commit: save base image: %w", err)
	}
	dir := filepath.Join(work, "archive")
	if err := untarOwn(saved, dir); err != nil {
		return nil, err
	}
	os.Remove(saved)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("commit: base archive: %w", err)
	}
	if err := json.Unmarshal(b, &manifest); err != nil || len(manifest) != 1 {
		return nil, fmt.Errorf("commit: base archive manifest: %v", err)
	}

	// The new layer.
	layerTmp := filepath.Join(dir, "layer.tmp")
	lf, err := os.Create(layerTmp)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	err = diffTar(ctx, upper, io.MultiWriter(lf, h))
	lf.Close()
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", r.Name, err)
	}
	diffID := "sha256:" + hex.EncodeToString(h.Sum(nil))
	layerName := hex.EncodeToString(h.Sum(nil)) + "/layer.tar"
	os.MkdirAll(filepath.Join(dir, path.Dir(layerName)), 0o755)
	if err := os.Rename(layerTmp, filepath.Join(dir, layerName)); err != nil {
		return nil, err
	}

	// The new config: the container's command as Cmd, one more diff ID and
	// history entry.
	var cfg ocispec.Image
	if err := json.Unmarshal(base.RawConfig, &cfg); err != nil {
		return nil, fmt.Errorf("commit: base config: %w", err)
	}
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.Author = o.Author
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.Digest(diffID))
	cfg.History = append(cfg.History, ocispec.History{Created: &now, Author: o.Author, Comment: o.Message,
		CreatedBy: "cove commit " + r.Name})
	cb, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cs := sha256.Sum256(cb)
	cfgName := hex.EncodeToString(cs[:]) + ".json"
	if err := os.WriteFile(filepath.Join(dir, cfgName), cb, 0o644); err != nil {
		return nil, err
	}
	manifest[0].Config = cfgName
	manifest[0].Layers = append(manifest[0].Layers, layerName)
	manifest[0].RepoTags = nil
	if ref != "" {
		pr, err := image.ParseReference(ref)
		if err != nil {
			return nil, err
		}
		manifest[0].RepoTags = []string{pr.String()}
	}
	mb, _ := json.Marshal(manifest)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mb, 0o644); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		files := append([]string{"manifest.json", cfgName}, manifest[0].Layers...)
		pw.CloseWithError(tarFiles(pw, dir, files))
	}()
	names, err := imgs.Load(ctx, pr, image.LoadOptions{Name: "localhost/committed"})
	pr.CloseWithError(err)
	if err != nil {
		return nil, fmt.Errorf("commit: load the new image: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("commit: the new image got no name")
	}
	return imgs.Get(names[0])
}

// untarOwn unpacks an archive cove itself wrote (names are checked anyway).
func untarOwn(src, dir string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.Create(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		}
	}
}

// tarFiles writes the named regular files of dir as a tar.
func tarFiles(w io.Writer, dir string, names []string) error {
	tw := tar.NewWriter(w)
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg, ModTime: st.ModTime()})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// diffTar writes an overlay upper directory as an OCI layer: whiteout
// devices (0:0) become .wh.NAME, opaque directories get .wh..wh..opq.
func diffTar(ctx context.Context, upper string, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := info.Sys().(*unix.Stat_t)
		if st == nil {
			var s unix.Stat_t
			if err := unix.Lstat(p, &s); err != nil {
				return err
			}
			st = &s
		}
		if info.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			return tw.WriteHeader(&tar.Header{Name: path.Join(path.Dir(rel), ".wh."+path.Base(rel)),
				Typeflag: tar.TypeReg, Mode: 0o600, ModTime: info.ModTime()})
		}
		if info.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = rel
		h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		h.Uname, h.Gname = "", ""
		if info.IsDir() {
			h.Name += "/"
		}
		if info.Mode().IsRegular() && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			} else {
				links[key] = rel
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.IsDir() {
			v := make([]byte, 8)
			if n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", v); err == nil && strings.TrimSpace(string(v[:n])) == "y" {
				return tw.WriteHeader(&tar.Header{Name: rel + "/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: info.ModTime()})
			}
			return nil
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
