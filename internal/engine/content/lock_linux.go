package content

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir creates dir if needed and takes an exclusive flock on dir/lock,
// blocking while another holder has it. A holder may delete the directory
// before unlocking; then the lock is taken again on the new file.
func lockDir(dir string) (*os.File, error) {
	for {
		f, ok, err := lockOnce(dir, 0)
		if err != nil || ok {
			return f, err
		}
	}
}

// tryLockDir is lockDir without blocking: ok is false when someone holds it.
func tryLockDir(dir string) (*os.File, bool, error) {
	for {
		f, ok, err := lockOnce(dir, unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		if err != nil || ok {
			return f, ok, err
		}
	}
}

// lockOnce returns ok=false (and no error) when the lock was taken on a file
// that has been removed meanwhile, so the caller should try again.
func lockOnce(dir string, flags int) (*os.File, bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	p := filepath.Join(dir, "lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|flags); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("flock %s: %w", p, err)
	}
	var held, now unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := unix.Stat(p, &now); err != nil || now.Ino != held.Ino || now.Dev != held.Dev {
		f.Close()
		return nil, false, nil
	}
	return f, true, nil
}

func unlock(f *os.File) {
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
