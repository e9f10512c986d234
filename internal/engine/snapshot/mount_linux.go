package snapshot

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// forceMount2 makes overlay mounts use mount(2); tests set it to cover
// kernels without fsopen(2) or "lowerdir+".
var forceMount2 bool

// mountOne performs m on target. Overlay mounts go through fsopen(2) with
// one "lowerdir+" per layer (Linux 6.8+), which has no page-size limit on
// the number of layers and no escaping of ':' or ','; older kernels get
// mount(2) with the option string.
func mountOne(m Mount, source, target string) error {
	switch m.Type {
	case "overlay":
		var err error = unix.ENOSYS
		if !forceMount2 {
			err = mountOverlayFsopen(m, source, target)
		}
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
			err = unix.Mount(source, target, "overlay", roFlag(m.Options), overlayData(m.Options))
		}
		return err
	case "bind":
		flags := uintptr(unix.MS_BIND)
		if hasOpt(m.Options, "rbind") {
			flags |= unix.MS_REC
		}
		if err := unix.Mount(m.Source, target, "", flags, ""); err != nil {
			return fmt.Errorf("bind %s: %w", m.Source, err)
		}
		if hasOpt(m.Options, "ro") {
			if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remount %s read-only: %w", target, err)
			}
		}
		return nil
	}
	return fmt.Errorf("mount type %q: %w", m.Type, ErrNotSupported)
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func roFlag(opts []string) uintptr {
	if hasOpt(opts, "ro") {
		return unix.MS_RDONLY
	}
	return 0
}

// overlayData is the mount(2) data string of an overlay Mount.
func overlayData(opts []string) string {
	var out []string
	for _, o := range opts {
		if o != "ro" {
			out = append(out, o)
		}
	}
	return strings.Join(out, ",")
}

func mountOverlayFsopen(m Mount, source, target string) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", source); err != nil {
		return fmt.Errorf("fsconfig source: %w", err)
	}
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "ro":
		case "lowerdir":
			for _, l := range strings.Split(v, ":") {
				if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
					return fmt.Errorf("fsconfig lowerdir+ %s: %w", l, err)
				}
			}
		default:
			if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
				return fmt.Errorf("fsconfig %s: %w", k, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("fsconfig create: %w", err)
	}
	attr := 0
	if hasOpt(m.Options, "ro") {
		attr = unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", target, err)
	}
	return nil
}
