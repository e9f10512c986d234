//go:build linux

package quota

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// btrfs ioctls (linux/btrfs.h), magic 0x94.
const (
	btrfsIocSubvolCreate    = 0x5000940e // _IOW(0x94, 14, btrfs_ioctl_vol_args)
	btrfsIocSnapDestroy     = 0x5000940f // _IOW(0x94, 15, btrfs_ioctl_vol_args)
	btrfsIocInoLookup       = 0xd0009412 // _IOWR(0x94, 18, btrfs_ioctl_ino_lookup_args)
	btrfsIocFsInfo          = 0x8400941f // _IOR(0x94, 31, btrfs_ioctl_fs_info_args)
	btrfsIocQuotaCtl        = 0xc0109428 // _IOWR(0x94, 40, btrfs_ioctl_quota_ctl_args)
	btrfsIocQgroupCreate    = 0x4010942a // _IOW(0x94, 42, btrfs_ioctl_qgroup_create_args)
	btrfsIocQgroupLimit     = 0x8030942b // _IOR(0x94, 43, btrfs_ioctl_qgroup_limit_args) (sic)
	btrfsIocQuotaRescanWait = 0x0000942e // _IO(0x94, 46)

	btrfsQuotaCtlEnable = 1
	btrfsLimitMaxExcl   = 1 << 1 // BTRFS_QGROUP_LIMIT_MAX_EXCL
)

type btrfsVolArgs struct {
	fd   int64
	name [4088]byte
}

type btrfsInoLookupArgs struct {
	treeid   uint64
	objectid uint64
	name     [4080]byte
}

type btrfsFsInfoArgs struct {
	maxID      uint64
	numDevices uint64
	fsid       [16]byte
	rest       [1024 - 32]byte
}

type btrfsQuotaCtlArgs struct {
	cmd    uint64
	status uint64
}

type btrfsQgroupCreateArgs struct {
	create   uint64
	qgroupid uint64
}

type btrfsQgroupLimitArgs struct {
	qgroupid uint64
	flags    uint64
	maxRfer  uint64
	maxExcl  uint64
	rsvRfer  uint64
	rsvExcl  uint64
}

// Sizes the kernel's ioctl numbers encode; these fail to compile otherwise.
var (
	_ [4096 - unsafe.Sizeof(btrfsVolArgs{})]struct{}
	_ [unsafe.Sizeof(btrfsVolArgs{}) - 4096]struct{}
	_ [4096 - unsafe.Sizeof(btrfsInoLookupArgs{})]struct{}
	_ [unsafe.Sizeof(btrfsInoLookupArgs{}) - 4096]struct{}
	_ [1024 - unsafe.Sizeof(btrfsFsInfoArgs{})]struct{}
	_ [48 - unsafe.Sizeof(btrfsQgroupLimitArgs{})]struct{}
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func btrfsSubvolCreate(dirfd int, name string) error {
	var a btrfsVolArgs
	if len(name) == 0 || len(name) >= len(a.name) {
		return unix.ENAMETOOLONG
	}
	copy(a.name[:], name)
	return ioctl(dirfd, btrfsIocSubvolCreate, unsafe.Pointer(&a))
}

func btrfsSnapDestroy(dirfd int, name string) error {
	var a btrfsVolArgs
	if len(name) == 0 || len(name) >= len(a.name) {
		return unix.ENAMETOOLONG
	}
	copy(a.name[:], name)
	return ioctl(dirfd, btrfsIocSnapDestroy, unsafe.Pointer(&a))
}

// btrfsSubvolID returns the id of the subvolume (tree) fd is in.
func btrfsSubvolID(fd int) (uint64, error) {
	a := btrfsInoLookupArgs{objectid: 256}
	if err := ioctl(fd, btrfsIocInoLookup, unsafe.Pointer(&a)); err != nil {
		return 0, err
	}
	return a.treeid, nil
}

func btrfsFsid(fd int) ([16]byte, error) {
	var a btrfsFsInfoArgs
	err := ioctl(fd, btrfsIocFsInfo, unsafe.Pointer(&a))
	return a.fsid, err
}

func btrfsQuotaEnable(fd int) error {
	a := btrfsQuotaCtlArgs{cmd: btrfsQuotaCtlEnable}
	return ioctl(fd, btrfsIocQuotaCtl, unsafe.Pointer(&a))
}

func btrfsQuotaRescanWait(fd int) error {
	return ioctl(fd, btrfsIocQuotaRescanWait, nil)
}

// btrfsQgroupDestroy removes qgroup 0/id.
func btrfsQgroupDestroy(fd int, id uint64) error {
	a := btrfsQgroupCreateArgs{create: 0, qgroupid: id}
	return ioctl(fd, btrfsIocQgroupCreate, unsafe.Pointer(&a))
}

// btrfsQgroupLimitExcl limits the exclusive bytes of the subvolume fd is
// in (qgroupid 0 means that subvolume); 0 removes the limit.
func btrfsQgroupLimitExcl(fd int, bytes uint64) error {
	a := btrfsQgroupLimitArgs{flags: btrfsLimitMaxExcl, maxExcl: bytes}
	if bytes == 0 {
		a.maxExcl = ^uint64(0)
	}
	return ioctl(fd, btrfsIocQgroupLimit, unsafe.Pointer(&a))
}
