package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpts is the parsed form of a spec mount's options.
type mountOpts struct {
	bind      bool      // "bind", "rbind" or type "bind"
	recursive bool      // "rbind"
	flags     uintptr   // MS_* flags requested
	cleared   uintptr   // MS_* flags explicitly turned off ("rw", "suid", ...)
	atime     bool      // an atime option was given
	prop      []uintptr // propagation changes, applied in order after the mount
	rec       unix.MountAttr
	data      []string // everything else, passed to the filesystem
}

type flagOpt struct {
	clear bool
	flag  uintptr
}

var flagOpts = map[string]flagOpt{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var atimeOpts = map[string]bool{
	"atime": true, "noatime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true,
}

var propOpts = map[string]uintptr{
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recOpts are the recursive mount_setattr(2) options (runc and crun names).
var recOpts = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro":          {false, unix.MOUNT_ATTR_RDONLY},
	"rrw":          {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":      {false, unix.MOUNT_ATTR_NOSUID},
	"rsuid":        {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev":       {false, unix.MOUNT_ATTR_NODEV},
	"rdev":         {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec":      {false, unix.MOUNT_ATTR_NOEXEC},
	"rexec":        {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":  {false, unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":    {true, unix.MOUNT_ATTR_NODIRATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":   {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// recAtimeOpts set the recursive atime mode.
var recAtimeOpts = map[string]uint64{
	"rrelatime":      unix.MOUNT_ATTR_RELATIME,
	"rnoatime":       unix.MOUNT_ATTR_NOATIME,
	"rstrictatime":   unix.MOUNT_ATTR_STRICTATIME,
	"ratime":         unix.MOUNT_ATTR_RELATIME,
	"rnorelatime":    unix.MOUNT_ATTR_STRICTATIME,
	"rnostrictatime": unix.MOUNT_ATTR_RELATIME,
}

// ignoredOpts are accepted but have no effect here.
var ignoredOpts = map[string]bool{"defaults": true, "tmpcopyup": true}

func parseOptions(typ string, options []string) (*mountOpts, error) {
	o := &mountOpts{bind: typ == "bind"}
	for _, opt := range options {
		switch {
		case opt == "bind":
			o.bind = true
		case opt == "rbind":
			o.bind, o.recursive = true, true
		case ignoredOpts[opt]:
		case opt == "idmap" || opt == "ridmap":
			return nil, fmt.Errorf("mount option %s is not supported", opt)
		default:
			if f, ok := flagOpts[opt]; ok {
				if f.clear {
					o.flags &^= f.flag
					o.cleared |= f.flag
				} else {
					o.flags |= f.flag
					o.cleared &^= f.flag
				}
				if atimeOpts[opt] {
					o.atime = true
				}
			} else if p, ok := propOpts[opt]; ok {
				o.prop = append(o.prop, p)
			} else if r, ok := recOpts[opt]; ok {
				if r.clear {
					o.rec.Attr_clr |= r.attr
					o.rec.Attr_set &^= r.attr
				} else {
					o.rec.Attr_set |= r.attr
					o.rec.Attr_clr &^= r.attr
				}
			} else if a, ok := recAtimeOpts[opt]; ok {
				o.rec.Attr_clr |= unix.MOUNT_ATTR__ATIME
				o.rec.Attr_set = o.rec.Attr_set&^unix.MOUNT_ATTR__ATIME | a
			} else {
				o.data = append(o.data, opt)
			}
		}
	}
	return o, nil
}

// attr converts the per-mount flags into a mount_setattr(2) request:
// requested flags are set, explicitly cleared ones are cleared, and the rest
// (including flags the kernel locked) are left as they are.
func (o *mountOpts) attr() unix.MountAttr {
	var a unix.MountAttr
	pairs := []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{unix.MS_NOSYMFOLLOW, unix.MOUNT_ATTR_NOSYMFOLLOW},
	}
	for _, p := range pairs {
		if o.flags&p.ms != 0 {
			a.Attr_set |= p.attr
		} else if o.cleared&p.ms != 0 {
			a.Attr_clr |= p.attr
		}
	}
	if o.atime {
		a.Attr_clr |= unix.MOUNT_ATTR__ATIME
		switch {
		case o.flags&unix.MS_NOATIME != 0:
			a.Attr_set |= unix.MOUNT_ATTR_NOATIME
		case o.flags&unix.MS_STRICTATIME != 0:
			a.Attr_set |= unix.MOUNT_ATTR_STRICTATIME
		default:
			a.Attr_set |= unix.MOUNT_ATTR_RELATIME
		}
	}
	return a
}

func (o *mountOpts) dataString() string { return strings.Join(o.data, ",") }

func emptyAttr(a unix.MountAttr) bool {
	return a.Attr_set == 0 && a.Attr_clr == 0 && a.Propagation == 0
}
