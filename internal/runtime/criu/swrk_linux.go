package criu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Find returns the path of the CRIU binary, or ErrNotFound.
func (c *Client) Find() (string, error) {
	path := c.Path
	if path == "" {
		path = "criu"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("%w: %s (install CRIU >= 4.2, e.g. with .ci/criu.sh, or pass --criu PATH)", ErrNotFound, path)
	}
	return bin, nil
}

// maxMsg bounds one RPC message; CRIU's responses are small.
const maxMsg = 64 * 1024

// Do runs call in a new `criu swrk` process and returns CRIU's final
// response. A response with success=false is returned together with an
// error carrying CRIU's errno and message.
func (c *Client) Do(call *Call) (*rpc.CriuResp, error) {
	bin, err := c.Find()
	if err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("criu socketpair: %w", err)
	}
	sock := os.NewFile(uintptr(fds[0]), "criu-client")
	peer := os.NewFile(uintptr(fds[1]), "criu-server")
	defer sock.Close()

	cmd := exec.Command(bin, "swrk", "3")
	// exec.Cmd wants io.Reader/io.Writer; keep a nil *os.File from
	// becoming a non-nil interface.
	if call.Stdin != nil {
		cmd.Stdin = call.Stdin
	}
	if call.Stdout != nil {
		cmd.Stdout = call.Stdout
	}
	if call.Stderr != nil {
		cmd.Stderr = call.Stderr
	}
	cmd.ExtraFiles = append([]*os.File{peer}, call.ExtraFiles...)
	err = cmd.Start()
	peer.Close()
	if err != nil {
		return nil, fmt.Errorf("start %s swrk: %w", bin, err)
	}
	resp, err := c.converse(cmd, sock, call)
	if err != nil {
		cmd.Process.Kill()
	}
	sock.Close()
	werr := cmd.Wait()
	if err != nil {
		return resp, err
	}
	if !resp.GetSuccess() {
		msg := strings.TrimSpace(resp.GetCrErrmsg())
		if msg == "" || strings.Contains(msg, "RLIMIT_NOFILE") {
			msg = "failed"
		}
		err := fmt.Errorf("criu %s: %s", call.Type, msg)
		if e := resp.GetCrErrno(); e != 0 {
			err = fmt.Errorf("%w: %w", err, unix.Errno(e))
		}
		return resp, err
	}
	if werr != nil {
		return resp, fmt.Errorf("criu swrk: %w", werr)
	}
	return resp, nil
}

func (c *Client) converse(cmd *exec.Cmd, sock *os.File, call *Call) (*rpc.CriuResp, error) {
	if call.Started != nil {
		if err := call.Started(cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	req := &rpc.CriuReq{Type: call.Type.Enum(), Opts: call.Opts, Features: call.Features}
	if err := send(sock, req); err != nil {
		return nil, err
	}
	for {
		resp, file, err := recv(sock)
		if err != nil {
			return nil, err
		}
		if resp.GetType() != rpc.CriuReqType_NOTIFY {
			if file != nil {
				file.Close()
			}
			if t := resp.GetType(); t != call.Type {
				return nil, fmt.Errorf("criu: answered %s to a %s request", t, call.Type)
			}
			return resp, nil
		}
		n := &Notification{Script: resp.GetNotify().GetScript(), Pid: int(resp.GetNotify().GetPid()), File: file}
		var nerr error
		if call.Notify != nil {
			nerr = call.Notify(n)
		} else if file != nil {
			file.Close()
		}
		ack := &rpc.CriuReq{Type: rpc.CriuReqType_NOTIFY.Enum(), NotifySuccess: proto.Bool(nerr == nil)}
		if err := send(sock, ack); err != nil {
			return nil, err
		}
		if nerr != nil {
			// CRIU aborts; drain its final answer so it exits cleanly.
			recv(sock)
			return nil, fmt.Errorf("criu notification %s: %w", n.Script, nerr)
		}
	}
}

func send(sock *os.File, req *rpc.CriuReq) error {
	b, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode criu request: %w", err)
	}
	if _, err := sock.Write(b); err != nil {
		return fmt.Errorf("send criu request: %w", err)
	}
	return nil
}

// recv reads one message and a descriptor passed with it, if any.
func recv(sock *os.File) (*rpc.CriuResp, *os.File, error) {
	buf := make([]byte, maxMsg)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	var rerr error
	raw, err := sock.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	err = raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read criu response: %w", err)
	}
	var file *os.File
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil && len(msgs) > 0 {
			if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) > 0 {
				file = os.NewFile(uintptr(fds[0]), "criu-fd")
				for _, fd := range fds[1:] {
					unix.Close(fd)
				}
			}
		}
	}
	if n == 0 {
		if file != nil {
			file.Close()
		}
		return nil, nil, errors.New("criu exited without an answer (see its log)")
	}
	resp := &rpc.CriuResp{}
	if err := proto.Unmarshal(buf[:n], resp); err != nil {
		if file != nil {
			file.Close()
		}
		return nil, nil, fmt.Errorf("decode criu response: %w", err)
	}
	return resp, file, nil
}
