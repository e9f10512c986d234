package specgen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/pathrs"
)

// ResolveUser turns -u user[:group] into ids, reading the container's
// /etc/passwd and /etc/group inside rootfs (symlinks stay inside). A named
// user also gets the groups /etc/group lists it in; groupAdd adds more.
func ResolveUser(rootfs, spec string, groupAdd []string) (specs.User, error) {
	var u specs.User
	name, group, hasGroup := strings.Cut(spec, ":")
	passwd := readDB(rootfs, "/etc/passwd")
	groups := readDB(rootfs, "/etc/group")
	username := ""
	switch {
	case name == "":
	case isNum(name):
		n, _ := strconv.ParseUint(name, 10, 32)
		u.UID = uint32(n)
		for _, f := range passwd {
			if len(f) >= 4 && f[2] == name {
				username = f[0]
				g, _ := strconv.ParseUint(f[3], 10, 32)
				u.GID = uint32(g)
				break
			}
		}
	default:
		found := false
		for _, f := range passwd {
			if len(f) >= 4 && f[0] == name {
				uid, err1 := strconv.ParseUint(f[2], 10, 32)
				gid, err2 := strconv.ParseUint(f[3], 10, 32)
				if err1 != nil || err2 != nil {
					continue
				}
				u.UID, u.GID, username, found = uint32(uid), uint32(gid), name, true
				break
			}
		}
		if !found {
			return u, fmt.Errorf("unable to find user %s: no matching entries in passwd file", name)
		}
	}
	if hasGroup {
		gid, err := lookupGroup(groups, group)
		if err != nil {
			return u, err
		}
		u.GID = gid
	} else if username != "" {
		for _, f := range groups {
			if len(f) < 4 {
				continue
			}
			for _, m := range strings.Split(f[3], ",") {
				if m == username {
					if g, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(g) != u.GID {
						u.AdditionalGids = append(u.AdditionalGids, uint32(g))
					}
				}
			}
		}
	}
	for _, g := range groupAdd {
		gid, err := lookupGroup(groups, g)
		if err != nil {
			return u, fmt.Errorf("--group-add: %w", err)
		}
		u.AdditionalGids = append(u.AdditionalGids, gid)
	}
	return u, nil
}

func lookupGroup(groups [][]string, g string) (uint32, error) {
	if isNum(g) {
		n, err := strconv.ParseUint(g, 10, 32)
		return uint32(n), err
	}
	for _, f := range groups {
		if len(f) >= 3 && f[0] == g {
			n, err := strconv.ParseUint(f[2], 10, 32)
			if err == nil {
				return uint32(n), nil
			}
		}
	}
	return 0, fmt.Errorf("unable to find group %s: no matching entries in group file", g)
}

func isNum(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// readDB reads a colon-separated database file inside rootfs; a missing
// or unreadable file is empty.
func readDB(rootfs, p string) [][]string {
	f, err := pathrs.OpenInRoot(rootfs, p, os.O_RDONLY)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
