// Package content is cove's content-addressed blob store: every blob lives at
// <root>/content/blobs/sha256/<hex>, written first into <root>/content/ingest/
// and moved into place by an atomic rename only after its size and digest
// were verified and its data synced to disk. Partial ingests survive an
// interrupted download and are resumed by the next writer for the same ref.
package content

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors returned by the store; check them with errors.Is.
var (
	// ErrNotFound means the blob is not in the store.
	ErrNotFound = errors.New("blob not found")
	// ErrInvalidDigest means a digest string is not "sha256:<64 hex>".
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrDigestMismatch means the bytes written do not hash to the expected digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch means more or fewer bytes were written than expected.
	ErrSizeMismatch = errors.New("size mismatch")
)

// Store is a content-addressed blob store rooted at one directory.
// It is safe for concurrent use by goroutines and by several processes.
type Store struct {
	root string
}

// Open opens (creating) the store in dir/content.
func Open(dir string) (*Store, error) {
	s := &Store{root: filepath.Join(dir, "content")}
	for _, d := range []string{s.blobDir(), s.ingestDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	return s, nil
}

func (s *Store) blobDir() string   { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) ingestDir() string { return filepath.Join(s.root, "ingest") }

// ValidDigest reports an error unless d is "sha256:" followed by 64 lowercase hex digits.
func ValidDigest(d string) error {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return fmt.Errorf("%w: %q", ErrInvalidDigest, d)
	}
	for _, c := range hexPart {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: %q", ErrInvalidDigest, d)
		}
	}
	return nil
}

// Digest returns the sha256 digest string of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Path returns where blob d is (or would be) stored.
func (s *Store) Path(d string) (string, error) {
	if err := ValidDigest(d); err != nil {
		return "", err
	}
	return filepath.Join(s.blobDir(), d[len("sha256:"):]), nil
}

// Has reports whether blob d is in the store.
func (s *Store) Has(d string) bool {
	p, err := s.Path(d)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// Size returns the size of blob d.
func (s *Store) Size(d string) (int64, error) {
	p, err := s.Path(d)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return 0, fmt.Errorf("stat blob: %w", err)
	}
	return st.Size(), nil
}

// Open opens blob d for reading.
func (s *Store) Open(d string) (*os.File, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return f, nil
}

// ReadAll reads blob d, refusing blobs larger than limit bytes
// (manifests and configs are small; a huge one is hostile).
func (s *Store) ReadAll(d string, limit int64) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s: larger than %d bytes", d, limit)
	}
	return b, nil
}

// Put stores b and returns its digest; if expected is not empty b must match it.
func (s *Store) Put(b []byte, expected string) (string, error) {
	d := Digest(b)
	if expected != "" && expected != d {
		return "", fmt.Errorf("%w: expected %s, got %s", ErrDigestMismatch, expected, d)
	}
	if s.Has(d) {
		return d, nil
	}
	w, err := s.Writer("put-"+d, d, int64(len(b)))
	if err != nil {
		return "", err
	}
	defer w.Close()
	if w.Offset() > 0 {
		w.Truncate()
	}
	if _, err := w.Write(b); err != nil {
		return "", err
	}
	return w.Commit()
}

// Delete removes blob d; a missing blob is not an error.
func (s *Store) Delete(d string) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob: %w", err)
	}
	return nil
}

// Walk calls fn for every blob in the store, with its digest and size.
func (s *Store) Walk(fn func(d string, size int64) error) error {
	ents, err := os.ReadDir(s.blobDir())
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, e := range ents {
		d := "sha256:" + e.Name()
		if ValidDigest(d) != nil || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if err := fn(d, info.Size()); err != nil {
			return err
		}
	}
	return nil
}

// Verify re-hashes blob d and reports an error if its content no longer matches.
func (s *Store) Verify(d string) error {
	f, err := s.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("verify blob %s: %w", d, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d {
		return fmt.Errorf("blob %s: %w: content hashes to %s", d, ErrDigestMismatch, got)
	}
	return nil
}
