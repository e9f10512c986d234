package image

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions configure Import.
type ImportOptions struct {
	Message  string   // history comment
	Cmd      []string // default command, if any
	Progress func(Event)
}

// Import makes a one-layer image named ref (unnamed if empty) from src: a rootfs directory,
// or a tarball (plain, gzip or zstd; "-" reads r). The layer is stored
// uncompressed, so its digest is its diff ID.
func (s *Store) Import(ctx context.Context, src string, r io.Reader, ref string, o ImportOptions) (*Image, error) {
	var refs []string
	if ref != "" {
		name, err := ParseReference(ref)
		if err != nil {
			return nil, err
		}
		refs = []string{name.Name()}
	}
	unlock, err := s.lockGC(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var layer loadedBlob
	if st, err := os.Stat(src); src != "-" && err == nil && st.IsDir() {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarDir(ctx, src, pw)) }()
		layer, err = s.ingestEntry(pr, "", -1)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", src, err)
		}
	} else {
		if src != "-" {
			f, err := os.Open(src)
			if err != nil {
				return nil, fmt.Errorf("import: %w", err)
			}
			defer f.Close()
			r = f
		}
		br := bufio.NewReaderSize(r, 1<<16)
		head, _ := br.Peek(4)
		zr, err := decompress(sniff(head), br)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", src, err)
		}
		defer zr.Close()
		if layer, err = s.ingestEntry(zr, "", -1); err != nil {
			return nil, fmt.Errorf("import %s: %w", src, err)
		}
	}
	now := time.Now().UTC()
	cfg := ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digestOf(layer.digest)}},
		History:  []ocispec.History{{Created: &now, CreatedBy: "cove import " + src, Comment: o.Message}},
	}
	cfg.Config.Cmd = o.Cmd
	cb, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cd, err := s.content.Put(cb, "")
	if err != nil {
		return nil, err
	}
	size, err := s.content.Size(layer.digest)
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{MediaType: MediaTypeOCIManifest,
		Config: ocispec.Descriptor{MediaType: MediaTypeOCIConfig, Digest: digestOf(cd), Size: int64(len(cb))},
		Layers: []ocispec.Descriptor{{MediaType: MediaTypeOCILayer, Digest: digestOf(layer.digest), Size: size}},
	}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	names, err := s.register(ctx, mb, MediaTypeOCIManifest, "", refs, "import "+src, LoadOptions{Progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", src, err)
	}
	return s.Get(names[0])
}

// tarDir writes dir as a tar stream: owners, modes, times, symlinks, hard
// links (by inode), devices and FIFOs; sockets are skipped.
func tarDir(ctx context.Context, dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		target := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, target)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		h.Format = tar.FormatPAX
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
			if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
				h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
			}
			if info.Mode().IsRegular() && st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, ok := links[key]; ok {
					h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
				} else {
					links[key] = h.Name
				}
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
