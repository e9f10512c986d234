package main

// `cove system check`: find and repair what crashes leave behind.

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newSystemCommand) }

func newSystemCommand() *cobra.Command {
	c := &cobra.Command{Use: "system", Short: "Manage cove itself", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	c.AddCommand(newSystemCheckCommand(), newRestartPolicyCommand(), newSystemDfCommand())
	return c
}

func newSystemCheckCommand() *cobra.Command {
	var noRepair bool
	c := &cobra.Command{
		Use:   "check [flags]",
		Short: "Report and repair leftovers of crashes (mounts, run directories, runtime state, container layers)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			rep, err := e.Check(!noRepair)
			if err != nil {
				return err
			}
			for _, p := range rep.Problems {
				fmt.Println(p)
			}
			if len(rep.Problems) == 0 {
				fmt.Println("ok")
			} else if noRepair {
				return fmt.Errorf("%d problems found", len(rep.Problems))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&noRepair, "dry-run", false, "report only")
	return c
}

// newRestartPolicyCommand starts the containers whose restart policy asks
// for it after a reboot: `always`, and `unless-stopped` unless a user
// stopped them. Wire it to boot with a systemd unit or an @reboot cron job
// running `cove system restart-policy`.
func newRestartPolicyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restart-policy",
		Short: "Start containers with --restart always (or unless-stopped) that are not running (run at boot)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			started, err := e.RestartPolicy(c.Context())
			for _, id := range started {
				fmt.Println(id)
			}
			return err
		},
	}
}
