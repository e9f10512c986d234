package monitor

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	WriteFrame(&b, FrameStdout, []byte("hello"))
	WriteFrame(&b, FrameExit, []byte("3"))
	typ, p, err := ReadFrame(&b)
	if err != nil || typ != FrameStdout || string(p) != "hello" {
		t.Fatalf("frame 1: %d %q %v", typ, p, err)
	}
	typ, p, err = ReadFrame(&b)
	if err != nil || typ != FrameExit || string(p) != "3" {
		t.Fatalf("frame 2: %d %q %v", typ, p, err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0xff, 0, 0, 0})); err == nil {
		t.Fatal("oversized frame accepted")
	}
}

func TestLogLineJSON(t *testing.T) {
	for _, s := range []string{"plain\n", "quote \" back\\slash\ttab\r\n", "ctl \x01\x1b\x7f end", "utf8 é ✓\n"} {
		b := appendJSONString(nil, []byte(s))
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("%q -> %s -> %q, %v", s, b, got, err)
		}
	}
}

func TestRuntimeErrorMessage(t *testing.T) {
	for _, line := range []string{
		`{"time":"t","level":"error","msg":"exec: \"nonexist\": executable file not found in $PATH"}`,
		`{"msg":"exec: \"nonexist\": executable file not found in $PATH","level":"error","time":"t"}`,
	} {
		p := t.TempDir() + "/log"
		os.WriteFile(p, []byte(line+"\n"), 0o600)
		code, msg := runtimeError(p, nil)
		if code != 127 || msg != `exec: "nonexist": executable file not found in $PATH` {
			t.Errorf("%s: %d %q", line, code, msg)
		}
	}
}
