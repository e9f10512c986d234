package quota

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// loopDriver keeps each capped directory as an ext4 image file (sparse,
// dir + ".img") attached to a loop device and mounted on dir. The device
// is attached with LO_FLAGS_AUTOCLEAR, so unmounting dir detaches it and a
// process dying between attach and mount leaves nothing attached.
// The image is made larger than the cap by ext4's own overhead (journal,
// inode tables), so the cap is the space files can use.
type loopDriver struct{}

func (loopDriver) Name() string { return Loop }

// minLoopSize is the smallest image: ext4 with a journal needs a few MiB.
const minLoopSize = 8 << 20

// ImagePath returns the image file the loop driver keeps for dir.
func ImagePath(dir string) string { return dir + ".img" }

// tool finds a program in PATH or the sbin directories, which a sudo or
// engine PATH may lack.
func tool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (Debian e2fsprogs): %w", name, ErrNotSupported)
}

func loopSupported() error {
	st, err := os.Stat("/dev/loop-control")
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return fmt.Errorf("no /dev/loop-control: %w", ErrNotSupported)
	}
	for _, t := range []string{"mkfs.ext4", "resize2fs", "e2fsck"} {
		if _, err := tool(t); err != nil {
			return err
		}
	}
	return nil
}

func run(name string, args ...string) error {
	p, err := tool(name)
	if err != nil {
		return err
	}
	out, err := exec.Command(p, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

func (d loopDriver) Create(dir string, size int64) (err error) {
	if err := checkSize(size); err != nil {
		return err
	}
	if err := loopSupported(); err != nil {
		return err
	}
	img := ImagePath(dir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("loop quota: %w", err)
	}
	defer func() {
		if err != nil {
			d.Remove(dir)
		}
	}()
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("loop quota: %w", err)
	}
	f.Close()
	// Format, then format again larger by what ext4 kept for itself
	// (journal, inode tables) until files can use size bytes.
	imgSize := roundUp(max(size, minLoopSize), 1<<20)
	for range 4 {
		if err := os.Truncate(img, imgSize); err != nil {
			return fmt.Errorf("loop quota: image %s: %w", img, err)
		}
		// 4 KiB blocks whatever the size, no reserved blocks, no discard
		// of the sparse file, inode tables initialised lazily.
		if err := run("mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0",
			"-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", img); err != nil {
			return fmt.Errorf("loop quota: %w", err)
		}
		free, err := ext4FreeBytes(img)
		if err != nil {
			return err
		}
		if free >= size {
			break
		}
		imgSize = roundUp(imgSize+size-free+size/200, 1<<20)
	}
	if err := d.Activate(dir); err != nil {
		return err
	}
	// lost+found would make an empty volume look non-empty; e2fsck
	// recreates it when it needs one.
	if err := os.Remove(filepath.Join(dir, "lost+found")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("loop quota: %w", err)
	}
	return nil
}

// ext4FreeBytes reads the free block count from the superblock of the
// unmounted ext4 image img.
func ext4FreeBytes(img string) (int64, error) {
	f, err := os.Open(img)
	if err != nil {
		return 0, fmt.Errorf("loop quota: %w", err)
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, fmt.Errorf("loop quota: superblock of %s: %w", img, err)
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xef53 {
		return 0, fmt.Errorf("loop quota: %s is not ext4", img)
	}
	blockSize := int64(1024) << binary.LittleEndian.Uint32(sb[0x18:])
	free := int64(binary.LittleEndian.Uint32(sb[0x0c:])) | int64(binary.LittleEndian.Uint32(sb[0x158:]))<<32
	return free * blockSize, nil
}

// lockImage takes an exclusive flock on dir's image, serialising
// attach, detach and resize between processes.
func lockImage(dir string) (*os.File, error) {
	f, err := os.OpenFile(ImagePath(dir), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("loop quota: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("loop quota: lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// loopMounted returns the loop device mounted on dir, or "" when dir is
// not a mount point of a loop device.
func loopMounted(dir string) (string, error) {
	var st, pst unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", fmt.Errorf("loop quota: %w", err)
	}
	if err := unix.Lstat(filepath.Dir(dir), &pst); err != nil {
		return "", fmt.Errorf("loop quota: %w", err)
	}
	if st.Dev == pst.Dev {
		return "", nil
	}
	maj, mnr := unix.Major(st.Dev), unix.Minor(st.Dev)
	if _, err := os.Stat(fmt.Sprintf("/sys/dev/block/%d:%d/loop", maj, mnr)); err != nil {
		return "", fmt.Errorf("loop quota: %s is a mount point of a device other than a loop device", dir)
	}
	return "/dev/loop" + strconv.FormatUint(uint64(mnr), 10), nil
}

func (loopDriver) Activate(dir string) error {
	if dev, err := loopMounted(dir); err != nil || dev != "" {
		return err
	}
	lk, err := lockImage(dir)
	if err != nil {
		return err
	}
	defer lk.Close()
	if dev, err := loopMounted(dir); err != nil || dev != "" {
		return err // another process mounted it meanwhile
	}
	return loopDriver{}.mount(dir)
}

// mount attaches dir's image and mounts it on dir. A loop device already
// backed by the image is reused: its filesystem may still be alive (an
// overlay whose upper dir is on it outlives the unmount of dir), and a
// second device would run two ext4 instances over one file.
// Preconditions: the image lock is held and dir is not mounted.
func (loopDriver) mount(dir string) error {
	if devs, err := LoopDevices(ImagePath(dir)); err == nil {
		for _, d := range devs {
			if d.Deleted {
				continue
			}
			if err := unix.Mount(d.Dev, dir, "ext4", unix.MS_NOATIME, ""); err != nil {
				return fmt.Errorf("loop quota: mount %s on %s: %w", d.Dev, dir, err)
			}
			return nil
		}
	}
	dev, f, err := AttachLoop(ImagePath(dir), true)
	if err != nil {
		return err
	}
	defer f.Close() // the mount holds the device now; unmount detaches it
	if err := unix.Mount(dev, dir, "ext4", unix.MS_NOATIME, ""); err != nil {
		return fmt.Errorf("loop quota: mount %s on %s: %w", dev, dir, err)
	}
	return nil
}

func (loopDriver) Deactivate(dir string) error {
	dev, err := loopMounted(dir)
	if err != nil || dev == "" {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("loop quota: unmount %s: %w", dir, err)
	}
	waitDetached(dev, ImagePath(dir))
	return nil
}

// waitDetached waits up to two seconds for the autoclear of dev, backed by
// img, which the kernel does once the filesystem's last reference (an
// overlay being torn down, say) is gone. A device still held then is
// detached by the kernel later.
func waitDetached(dev, img string) {
	for i := range 200 {
		b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
		if err != nil || strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), " (deleted)") != img {
			return
		}
		time.Sleep(time.Duration(min(i+1, 20)) * time.Millisecond)
	}
}

func (d loopDriver) Resize(dir string, size int64) error {
	if err := checkSize(size); err != nil {
		return err
	}
	if err := d.Activate(dir); err != nil {
		return err
	}
	u, err := d.Usage(dir)
	if err != nil {
		return err
	}
	if u.Used > size {
		return fmt.Errorf("resize %s to %s: %s in use: %w", dir, HumanSize(size), HumanSize(u.Used), ErrBelowUsage)
	}
	if size < u.Limit-u.Limit/100 {
		return fmt.Errorf("resize %s to %s: a loop image grows only (now %s): %w", dir, HumanSize(size), HumanSize(u.Limit), ErrNotSupported)
	}
	return d.grow(dir, size)
}

// grow enlarges the mounted image until the filesystem offers size bytes:
// a longer file, LOOP_SET_CAPACITY, then an online resize2fs. The kernel
// allows online ext4 resizing only with CAP_SYS_RESOURCE; without it the
// image is grown offline when nothing but this mount uses it (unmount,
// e2fsck, resize2fs, mount), and a busy one fails with ErrNotSupported.
func (d loopDriver) grow(dir string, size int64) error {
	lk, err := lockImage(dir)
	if err != nil {
		return err
	}
	defer lk.Close()
	for range 3 {
		var fs unix.Statfs_t
		if err := unix.Statfs(dir, &fs); err != nil {
			return fmt.Errorf("loop quota: %w", err)
		}
		capacity := int64(fs.Blocks) * fs.Bsize
		if capacity >= size {
			return nil
		}
		dev, err := loopMounted(dir)
		if err != nil {
			return err
		}
		if dev == "" {
			return fmt.Errorf("loop quota: %s is not mounted", dir)
		}
		st, err := lk.Stat()
		if err != nil {
			return fmt.Errorf("loop quota: %w", err)
		}
		// The gap plus 1% for the inode tables of the new block groups.
		if err := lk.Truncate(roundUp(st.Size()+size-capacity+size/100, 1<<20)); err != nil {
			return fmt.Errorf("loop quota: grow %s: %w", lk.Name(), err)
		}
		if err := setCapacity(dev); err != nil {
			return err
		}
		if !hasCapSysResource() {
			if err := d.growOffline(dir, dev); err != nil {
				return err
			}
			continue
		}
		if err := run("resize2fs", dev); err != nil {
			return fmt.Errorf("loop quota: %w", err)
		}
	}
	return nil
}

// growOffline resizes the filesystem of dir's image while it is unmounted.
// Preconditions: the image lock is held, the image file is already larger.
func (d loopDriver) growOffline(dir, dev string) error {
	if err := unix.Unmount(dir, 0); err != nil {
		if err == unix.EBUSY {
			return fmt.Errorf("loop quota: growing %s while it is in use needs CAP_SYS_RESOURCE (online ext4 resize), which this process lacks; grow it while the container is stopped: %w", dir, ErrNotSupported)
		}
		return fmt.Errorf("loop quota: unmount %s: %w", dir, err)
	}
	// An unmount succeeds even while an overlay whose upper dir lives on
	// this filesystem keeps its superblock alive (overlayfs holds a private
	// clone of the mount). The block device tells: it cannot be opened
	// exclusively while any filesystem on it is active.
	if f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_EXCL, 0); err != nil {
		if merr := d.mount(dir); merr != nil {
			return fmt.Errorf("loop quota: remount %s: %w", dir, merr)
		}
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("loop quota: growing %s while it is in use needs CAP_SYS_RESOURCE (online ext4 resize), which this process lacks; grow it while the container is stopped: %w", dir, ErrNotSupported)
		}
		return fmt.Errorf("loop quota: check %s is unused: %w", dev, err)
	} else {
		f.Close()
	}
	img := ImagePath(dir)
	// e2fsck exits 1 when it corrected something (it recreates the
	// lost+found Create removed), which is no failure.
	errFsck := run("e2fsck", "-f", "-p", img)
	var ee *exec.ExitError
	if errors.As(errFsck, &ee) && ee.ExitCode() == 1 {
		errFsck = nil
	}
	errResize := run("resize2fs", img)
	if err := d.mount(dir); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, "lost+found")) // only if empty
	if errFsck != nil {
		return fmt.Errorf("loop quota: %w", errFsck)
	}
	if errResize != nil {
		return fmt.Errorf("loop quota: %w", errResize)
	}
	return nil
}

// hasCapSysResource reports whether this process may resize a mounted
// ext4 filesystem.
func hasCapSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}

// Usage is statfs(2) of the mounted filesystem.
func (d loopDriver) Usage(dir string) (Usage, error) {
	if err := d.Activate(dir); err != nil {
		return Usage{}, err
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return Usage{}, fmt.Errorf("loop quota: %w", err)
	}
	return Usage{
		Used:   int64(fs.Blocks-fs.Bfree) * fs.Bsize,
		Inodes: int64(fs.Files - fs.Ffree),
		Limit:  int64(fs.Blocks) * fs.Bsize,
	}, nil
}

func (d loopDriver) Remove(dir string) error {
	if err := d.Deactivate(dir); err != nil {
		return err
	}
	if err := os.Remove(ImagePath(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("loop quota: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("loop quota: %w", err)
	}
	return nil
}

// AttachLoop attaches the image file img to a free loop device
// (LOOP_CTL_GET_FREE, then LOOP_CONFIGURE) and returns the device's path
// and an open handle of it. With autoclear the kernel detaches the device
// when its last user (this handle, a mount) goes away.
func AttachLoop(img string, autoclear bool) (string, *os.File, error) {
	back, err := os.OpenFile(img, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("attach loop: %w", err)
	}
	defer back.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("attach loop: %w", err)
	}
	defer ctl.Close()
	cfg := unix.LoopConfig{Fd: uint32(back.Fd()), Size: 4096}
	cfg.Info.Flags = unix.LO_FLAGS_DIRECT_IO
	if autoclear {
		cfg.Info.Flags |= unix.LO_FLAGS_AUTOCLEAR
	}
	name := img
	if len(name) >= len(cfg.Info.File_name) {
		name = name[len(name)-len(cfg.Info.File_name)+1:]
	}
	copy(cfg.Info.File_name[:], name)
	for range 50 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("attach loop: LOOP_CTL_GET_FREE: %w", err)
		}
		dev := "/dev/loop" + strconv.Itoa(n)
		f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", nil, fmt.Errorf("attach loop: %w", err)
		}
		err = unix.IoctlLoopConfigure(int(f.Fd()), &cfg)
		if err == unix.EINVAL && cfg.Info.Flags&unix.LO_FLAGS_DIRECT_IO != 0 {
			cfg.Info.Flags &^= unix.LO_FLAGS_DIRECT_IO // backing fs without O_DIRECT
			err = unix.IoctlLoopConfigure(int(f.Fd()), &cfg)
		}
		if err == nil {
			return dev, f, nil
		}
		f.Close()
		if err != unix.EBUSY {
			return "", nil, fmt.Errorf("attach loop: LOOP_CONFIGURE %s: %w", dev, err)
		}
		// Another process configured that device first: ask again.
	}
	return "", nil, fmt.Errorf("attach loop %s: no free loop device", img)
}

func setCapacity(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loop quota: %w", err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		return fmt.Errorf("loop quota: LOOP_SET_CAPACITY %s: %w", dev, err)
	}
	return nil
}

// LoopDevice is an attached loop device.
type LoopDevice struct {
	Dev     string // /dev/loopN
	Backing string // the backing file's path
	Deleted bool   // the backing file has been unlinked
}

// LoopDevices lists the attached loop devices whose backing file is
// under dir (symlinks in dir resolved, as the kernel reports paths).
func LoopDevices(dir string) ([]LoopDevice, error) {
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return nil, fmt.Errorf("list loop devices: %w", err)
	}
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r // the kernel reports resolved paths
	}
	var out []LoopDevice
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "loop", "backing_file"))
		if err != nil {
			continue // not attached
		}
		p := strings.TrimSuffix(string(b), "\n")
		del := strings.HasSuffix(p, " (deleted)")
		p = strings.TrimSuffix(p, " (deleted)")
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, LoopDevice{Dev: "/dev/" + e.Name(), Backing: p, Deleted: del})
		}
	}
	return out, nil
}

// DetachOrphanLoops detaches the loop devices backed by files under dir
// that keep does not claim (or whose file was deleted), unmounting their
// mounts in this mount namespace first. It returns the devices detached.
// A crash between attach and unmount, or a layer removed by hand, leaves
// such devices behind.
func DetachOrphanLoops(dir string, keep func(img string) bool) ([]string, error) {
	devs, err := LoopDevices(dir)
	if err != nil {
		return nil, err
	}
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		resolved = dir
	}
	var done []string
	for _, l := range devs {
		// keep knows paths under dir as given, the kernel resolved ones.
		p := dir + strings.TrimPrefix(l.Backing, resolved)
		if !l.Deleted && keep != nil && keep(p) {
			continue
		}
		if err := unmountDevice(l.Dev); err != nil {
			return done, err
		}
		if err := detachIfBacked(l); err != nil {
			return done, err
		}
		done = append(done, l.Dev)
	}
	return done, nil
}

// detachIfBacked detaches l.Dev after checking, with the device open, that
// it is still backed by l.Backing (not re-used by someone else meanwhile).
func detachIfBacked(l LoopDevice) error {
	f, err := os.OpenFile(l.Dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("detach %s: %w", l.Dev, err)
	}
	defer f.Close()
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(l.Dev), "loop", "backing_file"))
	if err != nil {
		return nil // detached meanwhile (autoclear)
	}
	if strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), " (deleted)") != l.Backing {
		return nil
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && err != unix.ENXIO {
		return fmt.Errorf("detach %s: LOOP_CLR_FD: %w", l.Dev, err)
	}
	return nil
}

// DetachLoop detaches dev if it is backed by img (as LoopDevices reports
// it), leaving any other device alone.
func DetachLoop(dev, img string) error {
	return detachIfBacked(LoopDevice{Dev: dev, Backing: img})
}

// unmountDevice lazily unmounts every mount of the block device dev in
// this mount namespace, deepest first.
func unmountDevice(dev string) error {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return fmt.Errorf("unmount %s: %w", dev, err)
	}
	want := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 4 && fs[2] == want {
			points = append(points, unescapeMountinfo(fs[4]))
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", points[i], err)
		}
	}
	return nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
