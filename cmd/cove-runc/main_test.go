package main

import (
	"flag"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"reflect"
	"testing"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		pos       []string
		bundle    string
		detach    bool
		noReaper  bool
		wantError bool
	}{
		{[]string{"--bundle", "b", "id"}, []string{"id"}, "b", false, false, false},
		{[]string{"--bundle=b", "id"}, []string{"id"}, "b", false, false, false},
		{[]string{"id", "-b", "b", "-d"}, []string{"id"}, "b", true, false, false},
		{[]string{"-no-subreaper", "--detach", "id"}, []string{"id"}, ".", true, true, false},
		{[]string{"-d", "--", "-id-with-dash"}, []string{"-id-with-dash"}, ".", true, false, false},
		{[]string{"--nope", "id"}, nil, ".", false, false, true},
	} {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		bundle := "."
		var detach, noReaper bool
		stringVar(fs, &bundle, ".", "bundle", "b")
		boolVar(fs, &detach, "detach", "d")
		fs.BoolVar(&noReaper, "no-subreaper", false, "")
		pos, err := parseArgs(fs, tc.args)
		if (err != nil) != tc.wantError {
			t.Errorf("%v: error %v", tc.args, err)
			continue
		}
		if err != nil {
			continue
		}
		if !reflect.DeepEqual(pos, tc.pos) || bundle != tc.bundle || detach != tc.detach || noReaper != tc.noReaper {
			t.Errorf("%v: pos %v bundle %q detach %v noReaper %v", tc.args, pos, bundle, detach, noReaper)
		}
	}
}

func TestApplyExecFlags(t *testing.T) {
	p := execBase()
	err := applyExecFlags(p, listFlag{"A=2", "B=3"}, listFlag{"CAP_SYS_ADMIN"}, listFlag{"5"}, "/w", "7:8", true, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Env, []string{"PATH=/bin", "A=2", "B=3"}) || p.Cwd != "/w" || p.User.UID != 7 || p.User.GID != 8 ||
		!reflect.DeepEqual(p.User.AdditionalGids, []uint32{5}) || !p.Terminal || !p.NoNewPrivileges {
		t.Errorf("process %+v", p)
	}
	c := p.Capabilities
	if len(c.Bounding) != 1 || len(c.Effective) != 1 || len(c.Permitted) != 1 || len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("--cap must not reach inheritable/ambient: %+v", c)
	}
	for _, bad := range []struct{ env, user, gid string }{{"noequals", "", ""}, {"", "x", ""}, {"", "1:y", ""}, {"", "", "z"}} {
		var env, gids listFlag
		if bad.env != "" {
			env = listFlag{bad.env}
		}
		if bad.gid != "" {
			gids = listFlag{bad.gid}
		}
		if err := applyExecFlags(execBase(), env, nil, gids, "", bad.user, false, false); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func execBase() *specs.Process {
	return &specs.Process{Env: []string{"PATH=/bin", "A=1"}}
}
