package content

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrExists is returned by Writer when the expected blob is already stored
// (possibly written meanwhile by another process).
var ErrExists = errors.New("blob already exists")

// errAborted is what followers see when a writer is closed without commit.
var errAborted = errors.New("ingest aborted")

// Writer ingests one blob. Data goes to <root>/content/ingest/<key>/data;
// Commit verifies it and renames it into blobs/. A Writer holds an exclusive
// lock on its ingest for its lifetime, so two processes fetching the same blob
// take turns and the second finds the blob committed.
type Writer struct {
	store    *Store
	dir      string
	expected string
	size     int64
	lock     *os.File

	// mu guards the fields below; cond is signalled on every change.
	mu      sync.Mutex
	cond    *sync.Cond
	f       *os.File
	h       hash.Hash
	written int64
	// verified: all data is written and matches the expected digest (set
	// before the sync and rename, so followers need not wait for them)
	verified bool
	done     bool
	err      error // why followers must stop (nil after a successful commit)
}

// Writer opens (resuming if a partial ingest for ref exists) an ingest for a
// blob with the given expected digest ("" if unknown) and size (-1 if unknown).
// It blocks while another process holds the same ingest. It returns ErrExists
// when the expected blob is already in the store.
func (s *Store) Writer(ref, expected string, size int64) (*Writer, error) {
	if expected != "" {
		if err := ValidDigest(expected); err != nil {
			return nil, err
		}
		if s.Has(expected) {
			return nil, ErrExists
		}
	}
	sum := sha256.Sum256([]byte(ref))
	dir := filepath.Join(s.ingestDir(), hex.EncodeToString(sum[:16]))
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	if expected != "" && s.Has(expected) {
		unlock(lock)
		return nil, ErrExists
	}
	w := &Writer{store: s, dir: dir, expected: expected, size: size, lock: lock, h: sha256.New()}
	w.cond = sync.NewCond(&w.mu)
	_ = os.WriteFile(filepath.Join(dir, "ref"), []byte(ref+"\n"), 0o600)
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		unlock(lock)
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	w.f = f
	// Resume: hash what an earlier attempt left behind.
	n, err := io.Copy(w.h, f)
	if err != nil || (size >= 0 && n > size) {
		n = 0
		w.h.Reset()
		if err := f.Truncate(0); err != nil {
			w.Close()
			return nil, fmt.Errorf("ingest %s: %w", ref, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			w.Close()
			return nil, fmt.Errorf("ingest %s: %w", ref, err)
		}
	}
	w.written = n
	return w, nil
}

// Offset is how many bytes the ingest holds already (resume from there).
func (w *Writer) Offset() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

// Write appends p to the ingest.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, errors.New("write to a closed ingest")
	}
	if w.size >= 0 && w.written+int64(len(p)) > w.size {
		return 0, fmt.Errorf("%w: more than the expected %d bytes", ErrSizeMismatch, w.size)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.written += int64(n)
	w.cond.Broadcast()
	if err != nil {
		return n, fmt.Errorf("write ingest: %w", err)
	}
	return n, nil
}

// Truncate discards what the ingest holds (for a server that ignored a range request).
func (w *Writer) Truncate() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate ingest: %w", err)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("truncate ingest: %w", err)
	}
	w.h.Reset()
	w.written = 0
	return nil
}

// Commit checks size and digest, syncs the data and renames it into the store.
// It returns the blob's digest. The Writer is closed afterwards.
func (w *Writer) Commit() (string, error) {
	d, err := w.commit()
	w.mu.Lock()
	w.done, w.err = true, err
	if err != nil {
		w.err = fmt.Errorf("ingest: %w", err)
	}
	w.cond.Broadcast()
	w.mu.Unlock()
	w.release(err == nil)
	return d, err
}

func (w *Writer) commit() (string, error) {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return "", errors.New("commit of a closed ingest")
	}
	if w.size >= 0 && w.written != w.size {
		w.mu.Unlock()
		return "", fmt.Errorf("%w: got %d bytes, expected %d", ErrSizeMismatch, w.written, w.size)
	}
	got := "sha256:" + hex.EncodeToString(w.h.Sum(nil))
	if w.expected != "" && got != w.expected {
		// Corrupt data is useless for a resume: drop it.
		_ = w.f.Truncate(0)
		w.written = 0
		w.h.Reset()
		w.mu.Unlock()
		return "", fmt.Errorf("%w: expected %s, got %s", ErrDigestMismatch, w.expected, got)
	}
	// The data is verified: followers may finish while it is synced.
	w.verified = true
	w.cond.Broadcast()
	f := w.f
	w.mu.Unlock()
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync blob: %w", err)
	}
	dst, _ := w.store.Path(got)
	if err := os.Rename(filepath.Join(w.dir, "data"), dst); err != nil {
		return "", fmt.Errorf("commit blob: %w", err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return "", err
	}
	return got, nil
}

// Close abandons the ingest without committing, keeping its data for a
// later resume. Followers get an error. Closing a committed Writer is a no-op.
func (w *Writer) Close() error { return w.Abort(errAborted) }

// Abort is Close with the error followers should see.
func (w *Writer) Abort(reason error) error {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return nil
	}
	w.done, w.err = true, reason
	w.cond.Broadcast()
	w.mu.Unlock()
	w.release(false)
	return nil
}

// Discard abandons the ingest and deletes its data.
func (w *Writer) Discard() error {
	w.mu.Lock()
	if !w.done {
		w.done, w.err = true, errAborted
		w.cond.Broadcast()
	}
	w.mu.Unlock()
	w.release(true)
	return nil
}

func (w *Writer) release(remove bool) {
	w.mu.Lock()
	f := w.f
	w.f = nil
	w.mu.Unlock()
	if f != nil {
		f.Close()
	}
	if w.lock == nil {
		return
	}
	if remove {
		os.RemoveAll(w.dir)
	}
	unlock(w.lock)
	w.lock = nil
}

// Follow returns a reader of the blob as it is being written: reads block
// until data arrives, and EOF comes only after a successful Commit, so a
// consumer never treats unverified data as complete. Call before Commit.
func (w *Writer) Follow() (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(w.dir, "data"))
	if err != nil {
		return nil, fmt.Errorf("follow ingest: %w", err)
	}
	return &follower{w: w, f: f}, nil
}

type follower struct {
	w   *Writer
	f   *os.File
	off int64
}

func (r *follower) Read(p []byte) (int, error) {
	for {
		n, err := r.read(p)
		// A truncated ingest (restarted download) reads short; wait for data.
		if n == 0 && err == io.EOF && !r.finished() {
			continue
		}
		return n, err
	}
}

func (r *follower) finished() bool {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	return (r.w.done || r.w.verified) && r.off >= r.w.written
}

func (r *follower) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w := r.w
	w.mu.Lock()
	for r.off >= w.written && !w.done && !w.verified {
		w.cond.Wait()
	}
	avail := w.written - r.off
	if avail <= 0 {
		if w.verified {
			w.mu.Unlock()
			return 0, io.EOF
		}
		err := w.err
		w.mu.Unlock()
		if err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	w.mu.Unlock()
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *follower) Close() error { return r.f.Close() }

// IngestInfo describes a partial ingest left in the store.
type IngestInfo struct {
	Ref     string
	Size    int64
	Updated time.Time
}

// CleanIngest removes partial ingests not in use by any writer and not
// updated for olderThan (0 removes every idle one). It returns what it removed.
func (s *Store) CleanIngest(olderThan time.Duration) ([]IngestInfo, error) {
	ents, err := os.ReadDir(s.ingestDir())
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var removed []IngestInfo
	for _, e := range ents {
		dir := filepath.Join(s.ingestDir(), e.Name())
		lock, ok, err := tryLockDir(dir)
		if err != nil || !ok {
			continue
		}
		info := IngestInfo{Ref: e.Name()}
		if b, err := os.ReadFile(filepath.Join(dir, "ref")); err == nil {
			info.Ref = string(b[:max(len(b)-1, 0)])
		}
		st, err := os.Stat(filepath.Join(dir, "data"))
		if err == nil {
			info.Size, info.Updated = st.Size(), st.ModTime()
		} else if !errors.Is(err, fs.ErrNotExist) {
			unlock(lock)
			continue
		}
		if err == nil && time.Since(st.ModTime()) < olderThan {
			unlock(lock)
			continue
		}
		os.RemoveAll(dir)
		unlock(lock)
		removed = append(removed, info)
	}
	return removed, nil
}
