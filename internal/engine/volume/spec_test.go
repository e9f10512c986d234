package volume

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseVolumeFlag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want MountSpec
	}{
		{"/data", MountSpec{Type: TypeVolume, Target: "/data"}},
		{"db:/var/lib/db", MountSpec{Type: TypeVolume, Source: "db", Target: "/var/lib/db"}},
		{"db:/var/lib/db/:ro,nocopy", MountSpec{Type: TypeVolume, Source: "db", Target: "/var/lib/db", ReadOnly: true, NoCopy: true}},
		{"/srv//www/:/www:ro,rshared,Z", MountSpec{Type: TypeBind, Source: "/srv/www", Target: "/www", ReadOnly: true, Propagation: "rshared", Relabel: "Z", CreateSource: true}},
		{"/h:/c:rw,cached", MountSpec{Type: TypeBind, Source: "/h", Target: "/c", CreateSource: true}},
	} {
		got, err := ParseVolumeFlag(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseVolumeFlag(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "rel", "db:rel", ":/x", "db:/", "/a:/b:c:d", "db:/x:bogus", "db:/x:ro,rw",
		"db:/x:rshared", "/h:/c:nocopy", "/h:/c:shared,slave", "../x:/y", "a:/y"} {
		if _, err := ParseVolumeFlag(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseVolumeFlag(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParseMountFlag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want MountSpec
	}{
		{"target=/data", MountSpec{Type: TypeVolume, Target: "/data"}},
		{"type=volume,src=db,dst=/db,volume-nocopy,volume-opt=size=1g,volume-label=a=b,ro=true",
			MountSpec{Type: TypeVolume, Source: "db", Target: "/db", NoCopy: true, ReadOnly: true,
				VolumeOptions: map[string]string{"size": "1g"}, VolumeLabels: map[string]string{"a": "b"}}},
		{"type=bind,source=/h/,destination=/c,readonly,bind-propagation=rslave,bind-nonrecursive",
			MountSpec{Type: TypeBind, Source: "/h", Target: "/c", ReadOnly: true, Propagation: "rslave", NonRecursive: true}},
		{"type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770",
			MountSpec{Type: TypeTmpfs, Target: "/run", TmpfsSize: 64 << 20, TmpfsMode: 0o1770}},
	} {
		got, err := ParseMountFlag(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseMountFlag(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "type=bind,dst=/c", "type=bind,src=rel,dst=/c", "type=tmpfs,src=x,dst=/t",
		"type=nfs,dst=/x", "dst=/x,bogus=1", "dst=/x,ro=maybe", "dst=rel", "dst=/x,dst=/y",
		"type=bind,src=/h,dst=/c,volume-nocopy", "dst=/x,bind-propagation=rshared", "dst=/x,tmpfs-size=1m",
		"type=tmpfs,dst=/t,tmpfs-mode=999", "src=../x,dst=/y"} {
		if _, err := ParseMountFlag(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseMountFlag(%q): %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := ParseMountFlag("dst=/x,volume-driver=nfs"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("volume-driver=nfs: %v", err)
	}
}
