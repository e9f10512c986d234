// Package criu drives CRIU (Checkpoint/Restore In Userspace) through its RPC
// protocol: it starts `criu swrk 3` on one end of a SOCK_SEQPACKET socket
// pair, sends one request (protobuf types from go-criu's rpc package),
// answers CRIU's notifications (action scripts such as "post-restore") and
// returns the final response.
package criu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
)

// ErrNotFound means the CRIU binary could not be found or started.
var ErrNotFound = errors.New("criu binary not found")

// Client runs one CRIU binary.
type Client struct {
	// Path is the criu binary: a path, or a name looked up in PATH.
	Path string
}

// Call is one request to a fresh `criu swrk` process.
type Call struct {
	Type     rpc.CriuReqType
	Opts     *rpc.CriuOpts
	Features *rpc.CriuFeatures
	// Stdin, Stdout and Stderr become CRIU's fds 0-2 (nil: /dev/null).
	// Restored processes inherit them through InheritFd entries.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles become CRIU's fds 4, 5, ... (fd 3 is the RPC socket); use
	// ExtraFd to name them in InheritFd. ImagesDirFd, WorkDirFd and StatusFd
	// are not among them: CRIU opens those through /proc/<caller>/fd, so
	// they are the caller's own fd numbers.
	ExtraFiles []*os.File
	// Started runs once CRIU exists, before the request is sent: the place
	// to move it into a cgroup.
	Started func(pid int) error
	// Notify answers an action-script notification; an error makes CRIU
	// abort the operation. Nil acknowledges every notification.
	Notify func(n *Notification) error
}

// ExtraFd is the fd number in CRIU of Call.ExtraFiles[i].
func ExtraFd(i int) int32 { return int32(4 + i) }

// Notification is one action-script callback from CRIU.
type Notification struct {
	// Script is the action name: "setup-namespaces", "post-restore",
	// "network-lock", "orphan-pts-master", ...
	Script string
	// Pid is the root task's pid where CRIU reports one.
	Pid int
	// File is a descriptor CRIU passed with the notification
	// (orphan-pts-master: the pty master), else nil. The receiver owns it.
	File *os.File
}

// Version is a CRIU version.
type Version struct {
	Major, Minor, Sublevel int
}

// Code is the version as one comparable number, as CRIU writes it:
// major*10000 + minor*100 + sublevel.
func (v Version) Code() int { return v.Major*10000 + v.Minor*100 + v.Sublevel }

// String returns "major.minor.sublevel".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Sublevel) }

// Version asks CRIU for its version.
func (c *Client) Version() (Version, error) {
	resp, err := c.Do(&Call{Type: rpc.CriuReqType_VERSION})
	if err != nil {
		return Version{}, err
	}
	v := resp.GetVersion()
	if v == nil {
		return Version{}, errors.New("criu: version response without a version")
	}
	return Version{int(v.GetMajorNumber()), int(v.GetMinorNumber()), int(v.GetSublevel())}, nil
}

// Features asks CRIU which of the features set in want this kernel and
// CRIU support.
func (c *Client) Features(want *rpc.CriuFeatures) (*rpc.CriuFeatures, error) {
	resp, err := c.Do(&Call{Type: rpc.CriuReqType_FEATURE_CHECK, Features: want})
	if err != nil && resp == nil {
		return nil, err
	}
	// A feature check that finds a feature missing answers success=false
	// but still lists the features.
	if resp.GetFeatures() == nil {
		return nil, fmt.Errorf("criu feature check: %w", err)
	}
	return resp.GetFeatures(), nil
}

// LogErrors returns the last n lines of a CRIU log that report errors, to
// put into an error message; "" when there are none or the log is missing.
func LogErrors(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := sc.Text()
		// CRIU cannot raise its own RLIMIT_NOFILE without CAP_SYS_RESOURCE
		// and goes on: not the error anyone is looking for.
		if strings.Contains(l, "Error") && !strings.Contains(l, "RLIMIT_NOFILE") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}
