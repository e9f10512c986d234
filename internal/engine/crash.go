package engine

import (
	"os"
	"syscall"
)

// crashPoint kills the process with SIGKILL when COVE_TEST_CRASH names
// this step: the crash-at-each-step tests use it to leave exactly what a
// crash there would leave.
func crashPoint(step string) {
	if s := os.Getenv("COVE_TEST_CRASH"); s != "" && s == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}

// CrashSteps lists the steps crashPoint knows, in order.
var CrashSteps = []string{
	"create:prepared", "create:recorded",
	"start:mounted", "start:network", "start:spec", "start:monitor",
	"rm:cleaned", "rm:layer",
}

var traceStart = nowFunc()

// trace prints the time since the process started at step when
// COVE_TRACE is set (where `cove run`'s milliseconds go).
func trace(step string) {
	if os.Getenv("COVE_TRACE") != "" {
		os.Stderr.WriteString("cove trace: " + step + " " + sinceStart() + "\n")
	}
}
