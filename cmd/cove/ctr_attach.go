package main

// The attach client: streams a container's output from its supervisor,
// forwards stdin, terminal size and signals, and returns the exit code.

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"cove/internal/engine"
	"cove/internal/engine/monitor"
	"cove/internal/runtime/console"
)

func init() { register(newAttachCommand) }

// attachStream runs the client side of an attach until the container
// exits (returning its code) or the connection ends (125 unless an exit
// frame came). With proxySignals, signals sent to cove go to pid.
func attachStream(conn net.Conn, pid int, tty, stdin, proxySignals bool) int {
	defer conn.Close()
	var wmu chanMutex = make(chan struct{}, 1)
	send := func(typ byte, p []byte) {
		wmu <- struct{}{}
		monitor.WriteFrame(conn, typ, p)
		<-wmu
	}
	inTerm := tty && isTerminal(os.Stdin)
	if inTerm {
		if restore, err := console.MakeRaw(os.Stdin); err == nil {
			defer restore()
		}
		resize := func() {
			if rows, cols, err := console.Size(os.Stdin); err == nil {
				send(monitor.FrameResize, []byte{byte(rows >> 8), byte(rows), byte(cols >> 8), byte(cols)})
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	if proxySignals && !inTerm && pid > 0 {
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		defer signal.Stop(sigs)
		go func() {
			for s := range sigs {
				syscall.Kill(pid, s.(syscall.Signal))
			}
		}()
	}
	if stdin {
		go func() {
			buf := make([]byte, 32*1024)
			for {
				n, err := os.Stdin.Read(buf)
				if n > 0 {
					send(monitor.FrameStdin, buf[:n])
				}
				if err != nil {
					send(monitor.FrameCloseStdin, nil)
					return
				}
			}
		}()
	}
	for {
		typ, p, err := monitor.ReadFrame(conn)
		if err != nil {
			return 125
		}
		switch typ {
		case monitor.FrameStdout:
			os.Stdout.Write(p)
		case monitor.FrameStderr:
			os.Stderr.Write(p)
		case monitor.FrameExit:
			code, _ := strconv.Atoi(string(p))
			return code
		case monitor.FrameError:
			codeS, msg, _ := strings.Cut(string(p), " ")
			fmt.Fprintln(os.Stderr, "Error:", msg)
			code, _ := strconv.Atoi(codeS)
			return code
		}
	}
}

type chanMutex chan struct{}

func newAttachCommand() *cobra.Command {
	var noStdin bool
	c := &cobra.Command{
		Use:   "attach [flags] CONTAINER",
		Short: "Attach to a running container's stdio",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			r, err := lookup(e, args[0])
			if err != nil {
				return err
			}
			st := e.State(r)
			if !st.Running {
				return fmt.Errorf("container %s: %w", r.Name, engine.ErrNotRunning)
			}
			o, err := engine.Options(r.Options)
			if err != nil {
				return err
			}
			conn, err := net.Dial("unix", filepath.Join(e.RunDir(r.ID), monitor.AttachSock))
			if err != nil {
				return fmt.Errorf("attach to %s: %w", r.Name, err)
			}
			code := attachStream(conn, st.Pid, o.Tty, o.Stdin && !noStdin, true)
			if code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach stdin")
	return c
}
