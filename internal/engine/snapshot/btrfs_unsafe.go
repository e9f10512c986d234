//go:build linux

package snapshot

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// btrfs ioctls (linux/btrfs.h): magic 0x94, struct sizes 4096 (vol_args
// and vol_args_v2) or 8 (flags).
const (
	btrfsIocSubvolCreate   = 0x5000940e // _IOW(0x94, 14, btrfs_ioctl_vol_args)
	btrfsIocSnapDestroy    = 0x5000940f // _IOW(0x94, 15, btrfs_ioctl_vol_args)
	btrfsIocSnapCreateV2   = 0x50009417 // _IOW(0x94, 23, btrfs_ioctl_vol_args_v2)
	btrfsIocSubvolGetFlags = 0x80089419 // _IOR(0x94, 25, __u64)
	btrfsIocSubvolSetFlags = 0x4008941a // _IOW(0x94, 26, __u64)
	btrfsSubvolReadOnly    = 1 << 1
)

// btrfsVolArgs is struct btrfs_ioctl_vol_args.
type btrfsVolArgs struct {
	fd   int64
	name [4088]byte
}

// btrfsVolArgsV2 is struct btrfs_ioctl_vol_args_v2.
type btrfsVolArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [4040]byte
}

func setName(dst []byte, name string) error {
	if len(name) >= len(dst) || len(name) == 0 {
		return unix.ENAMETOOLONG
	}
	copy(dst, name)
	return nil
}

func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func ioctlSubvolCreate(dirfd int, name string) error {
	var a btrfsVolArgs
	if err := setName(a.name[:], name); err != nil {
		return err
	}
	return ioctlPtr(dirfd, btrfsIocSubvolCreate, unsafe.Pointer(&a))
}

func ioctlSnapDestroy(dirfd int, name string) error {
	var a btrfsVolArgs
	if err := setName(a.name[:], name); err != nil {
		return err
	}
	return ioctlPtr(dirfd, btrfsIocSnapDestroy, unsafe.Pointer(&a))
}

func ioctlSnapCreate(dirfd, srcfd int, name string, readOnly bool) error {
	var a btrfsVolArgsV2
	a.fd = int64(srcfd)
	if readOnly {
		a.flags = btrfsSubvolReadOnly
	}
	if err := setName(a.name[:], name); err != nil {
		return err
	}
	return ioctlPtr(dirfd, btrfsIocSnapCreateV2, unsafe.Pointer(&a))
}

func ioctlSubvolGetFlags(fd int) (uint64, error) {
	var f uint64
	err := ioctlPtr(fd, btrfsIocSubvolGetFlags, unsafe.Pointer(&f))
	return f, err
}

func ioctlSubvolSetFlags(fd int, flags uint64) error {
	return ioctlPtr(fd, btrfsIocSubvolSetFlags, unsafe.Pointer(&flags))
}

// The kernel reads exactly 4096 bytes for both argument structs; these
// fail to compile otherwise.
var (
	_ [4096 - unsafe.Sizeof(btrfsVolArgs{})]struct{}
	_ [unsafe.Sizeof(btrfsVolArgs{}) - 4096]struct{}
	_ [4096 - unsafe.Sizeof(btrfsVolArgsV2{})]struct{}
	_ [unsafe.Sizeof(btrfsVolArgsV2{}) - 4096]struct{}
)
