package flock

import (
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	release, err := Lock(p, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description must not get the lock meanwhile.
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("shared lock while held exclusively: %v, want EWOULDBLOCK", err)
	}
	release()
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unix.Flock(fd, unix.LOCK_UN)

	// Shared locks share.
	r1, err := Lock(p, Shared)
	if err != nil {
		t.Fatal(err)
	}
	defer r1()
	r2, err := Lock(p, Shared)
	if err != nil {
		t.Fatal(err)
	}
	r2()
}

func TestLockMissingDir(t *testing.T) {
	_, err := Lock(filepath.Join(t.TempDir(), "gone", "lock"), Exclusive)
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("lock in a missing directory: %v, want ENOENT", err)
	}
}
