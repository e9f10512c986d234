package runtime

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// withHome returns env with HOME set, as runc sets it, when the process
// spec leaves it out or empty: the home directory of uid in the
// container's /etc/passwd, else "/". Docker and containerd leave HOME to
// the runtime; Podman's exec passes "HOME=" for a user without an entry.
// Preconditions: the process is inside the container's root.
func withHome(env []string, uid uint32) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if e == "HOME=" {
			continue
		}
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
		out = append(out, e)
	}
	return append(out, "HOME="+passwdHome("/etc/passwd", uid))
}

// passwdHome is the home directory of uid in a passwd file, or "/".
func passwdHome(path string, uid uint32) string {
	f, err := os.Open(path)
	if err != nil {
		return "/"
	}
	defer f.Close()
	want := strconv.FormatUint(uint64(uid), 10)
	s := bufio.NewScanner(f)
	for s.Scan() {
		// name:password:uid:gid:gecos:home:shell
		f := strings.Split(s.Text(), ":")
		if len(f) >= 6 && f[2] == want && f[5] != "" {
			return f[5]
		}
	}
	return "/"
}
