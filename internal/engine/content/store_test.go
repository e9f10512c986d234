package content

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestPutAndRead(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Put([]byte("hello"), "")
	if err != nil {
		t.Fatal(err)
	}
	if d != Digest([]byte("hello")) || !s.Has(d) {
		t.Fatalf("digest %s not stored", d)
	}
	b, err := s.ReadAll(d, 10)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if _, err := s.ReadAll(d, 2); err == nil {
		t.Fatal("ReadAll over the limit succeeded")
	}
	if _, err := s.Put([]byte("x"), d); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Put with wrong digest: %v", err)
	}
	if err := s.Verify(d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("sha256:../../etc"); !errors.Is(err, ErrInvalidDigest) {
		t.Fatalf("bad digest accepted: %v", err)
	}
}

func TestWriterRejectsWrongDigestAndSize(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := []byte("some layer")
	w, err := s.Writer("r1", Digest([]byte("other")), -1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if _, err := w.Commit(); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("commit: %v", err)
	}
	w, _ = s.Writer("r2", Digest(data), int64(len(data))-1)
	if _, err := w.Write(data); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("oversized write: %v", err)
	}
	w.Close()
	w, _ = s.Writer("r3", Digest(data), int64(len(data))+1)
	w.Write(data)
	if _, err := w.Commit(); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("short commit: %v", err)
	}
	n := 0
	s.Walk(func(string, int64) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d blobs stored after failed commits", n)
	}
}

func TestWriterResumes(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := bytes.Repeat([]byte("0123456789"), 1000)
	d := Digest(data)
	w, err := s.Writer("layer", d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:4000])
	w.Close() // interrupted download
	w, err = s.Writer("layer", d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 4000 {
		t.Fatalf("resume offset %d, want 4000", w.Offset())
	}
	w.Write(data[4000:])
	if got, err := w.Commit(); err != nil || got != d {
		t.Fatalf("commit = %s, %v", got, err)
	}
	if _, err := s.Writer("layer", d, int64(len(data))); !errors.Is(err, ErrExists) {
		t.Fatalf("writer for a stored blob: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.root, "ingest"))
	if len(ents) != 0 {
		t.Fatalf("ingest left behind: %v", ents)
	}
}

func TestFollowerSeesDataOnlyAfterVerifiedCommit(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := bytes.Repeat([]byte("abc"), 100000)
	for _, good := range []bool{true, false} {
		want := Digest(data)
		if !good {
			want = Digest([]byte("nope"))
		}
		w, err := s.Writer("f", want, -1)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := w.Follow()
		var got []byte
		var rerr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); got, rerr = io.ReadAll(r) }()
		for i := 0; i < len(data); i += 7000 {
			w.Write(data[i:min(i+7000, len(data))])
		}
		_, cerr := w.Commit()
		wg.Wait()
		r.Close()
		if good && (cerr != nil || rerr != nil || !bytes.Equal(got, data)) {
			t.Fatalf("good blob: commit %v, follow %v, %d bytes", cerr, rerr, len(got))
		}
		if !good && (cerr == nil || rerr == nil) {
			t.Fatalf("bad blob: commit %v, follower error %v", cerr, rerr)
		}
	}
}

func TestCleanIngestSkipsActiveWriters(t *testing.T) {
	s, _ := Open(t.TempDir())
	busy, _ := s.Writer("busy", "", -1)
	busy.Write([]byte("x"))
	idle, _ := s.Writer("idle", "", -1)
	idle.Write([]byte("y"))
	idle.Close()
	removed, err := s.CleanIngest(0)
	if err != nil || len(removed) != 1 || removed[0].Ref != "idle" {
		t.Fatalf("removed %+v, %v", removed, err)
	}
	if d, err := busy.Commit(); err != nil || !s.Has(d) {
		t.Fatalf("busy writer broken by clean: %v", err)
	}
}
