//go:build linux

package cgroups

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpfProgLoadAttr is the BPF_PROG_LOAD part of union bpf_attr.
type bpfProgLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// bpfAttachAttr is the BPF_PROG_ATTACH / BPF_PROG_DETACH part of union bpf_attr.
type bpfAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

// bpfQueryAttr is the BPF_PROG_QUERY part of union bpf_attr.
type bpfQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

// bpfGetFdAttr is the BPF_PROG_GET_FD_BY_ID part of union bpf_attr.
type bpfGetFdAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// loadDeviceProgram loads a cgroup device program and returns its fd. On
// failure it reloads with the verifier log to explain the error.
func loadDeviceProgram(p []insn) (int, error) {
	code := encode(p)
	license := []byte("Apache-2.0\x00")
	attr := bpfProgLoadAttr{
		progType:           unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:            uint32(len(p)),
		insns:              uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:            uint64(uintptr(unsafe.Pointer(&license[0]))),
		expectedAttachType: unix.BPF_CGROUP_DEVICE,
	}
	copy(attr.progName[:], "cove_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil && !errors.Is(err, unix.EPERM) {
		log := make([]byte, 64*1024)
		attr.logLevel = 1
		attr.logSize = uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
		if _, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 != nil {
			n := 0
			for n < len(log) && log[n] != 0 {
				n++
			}
			err = fmt.Errorf("%w: verifier: %s", err, log[:n])
		}
		runtime.KeepAlive(log)
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if err != nil {
		return -1, fmt.Errorf("bpf prog load (device cgroup, %d insns): %w", len(p), err)
	}
	return fd, nil
}

// attachedDevicePrograms lists the ids of device programs attached to the cgroup.
func attachedDevicePrograms(cgFd int) ([]uint32, error) {
	ids := make([]uint32, 64)
	attr := bpfQueryAttr{
		targetFd:   uint32(cgFd),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIDs:    uint64(uintptr(unsafe.Pointer(&ids[0]))),
		progCnt:    uint32(len(ids)),
	}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, fmt.Errorf("bpf prog query: %w", err)
	}
	return ids[:attr.progCnt], nil
}

// attachDeviceProgram attaches (detach false) or detaches progFd on the cgroup.
func attachDeviceProgram(cgFd, progFd int, detach bool) error {
	attr := bpfAttachAttr{
		targetFd:    uint32(cgFd),
		attachBpfFd: uint32(progFd),
		attachType:  unix.BPF_CGROUP_DEVICE,
	}
	cmd, name := unix.BPF_PROG_DETACH, "detach"
	if !detach {
		cmd, name = unix.BPF_PROG_ATTACH, "attach"
		attr.attachFlags = unix.BPF_F_ALLOW_MULTI
	}
	if _, err := bpf(cmd, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return fmt.Errorf("bpf prog %s: %w", name, err)
	}
	return nil
}

// programFdByID opens an fd on the loaded program with the given id.
func programFdByID(id uint32) (int, error) {
	attr := bpfGetFdAttr{id: id}
	fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, fmt.Errorf("bpf prog get fd by id %d: %w", id, err)
	}
	return fd, nil
}
