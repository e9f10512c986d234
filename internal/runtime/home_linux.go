package runtime

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// withHome returns env with HOME set, as runc sets it, when the process
// spec leaves it out: the home directory of uid in the container's
// /etc/passwd, else "/". Docker and containerd leave HOME to the runtime.
// Preconditions: the process is inside the container's root.
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	return append(env[:len(env):len(env)], "HOME="+passwdHome("/etc/passwd", uid))
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
