//go:build linux

package quota

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Project quota interfaces: linux/fs.h (fsxattr) and linux/quota.h.
const (
	fsIocFsGetXattr    = 0x801c581f // _IOR('X', 31, struct fsxattr)
	fsIocFsSetXattr    = 0x401c5820 // _IOW('X', 32, struct fsxattr)
	fsXflagProjInherit = 0x00000200

	qGetInfo   = 0x800005
	qGetQuota  = 0x800007
	qSetQuota  = 0x800008
	prjQuota   = 2
	qifBLimits = 1
)

// fsxattr is struct fsxattr.
type fsxattr struct {
	xflags     uint32
	extsize    uint32
	nextents   uint32
	projid     uint32
	cowextsize uint32
	pad        [8]byte
}

// ifDqblk is struct if_dqblk (limits in 1 KiB blocks, space in bytes).
type ifDqblk struct {
	bhardlimit uint64
	bsoftlimit uint64
	curspace   uint64
	ihardlimit uint64
	isoftlimit uint64
	curinodes  uint64
	btime      uint64
	itime      uint64
	valid      uint32
	_          uint32
}

// ifDqinfo is struct if_dqinfo.
type ifDqinfo struct {
	bgrace uint64
	igrace uint64
	flags  uint32
	valid  uint32
}

var (
	_ [28 - unsafe.Sizeof(fsxattr{})]struct{}
	_ [72 - unsafe.Sizeof(ifDqblk{})]struct{}
)

func qcmd(cmd, typ uint32) uintptr { return uintptr(cmd<<8 | typ&0xff) }

// quotactlFd is quotactl_fd(2) (Linux 5.14) on the filesystem fd is on.
func quotactlFd(fd int, cmd uint32, id uint32, addr unsafe.Pointer) error {
	_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(fd), qcmd(cmd, prjQuota), uintptr(id), uintptr(addr), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func projectInfo(fd int) error {
	var i ifDqinfo
	return quotactlFd(fd, qGetInfo, 0, unsafe.Pointer(&i))
}

func projectGet(fd int, id uint32) (ifDqblk, error) {
	var q ifDqblk
	err := quotactlFd(fd, qGetQuota, id, unsafe.Pointer(&q))
	return q, err
}

// projectSetLimit sets project id's hard block limit to bytes (rounded up
// to KiB; 0 removes it).
func projectSetLimit(fd int, id uint32, bytes int64) error {
	q := ifDqblk{bhardlimit: uint64((bytes + 1023) / 1024), valid: qifBLimits}
	return quotactlFd(fd, qSetQuota, id, unsafe.Pointer(&q))
}

func getFsxattr(fd int) (fsxattr, error) {
	var x fsxattr
	err := ioctl(fd, fsIocFsGetXattr, unsafe.Pointer(&x))
	return x, err
}

func setFsxattr(fd int, x fsxattr) error {
	return ioctl(fd, fsIocFsSetXattr, unsafe.Pointer(&x))
}
