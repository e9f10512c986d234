package main

// `cove commit`: a container's changes become a new image layer.

import (
	"fmt"

	"github.com/spf13/cobra"

	"cove/internal/engine"
)

func init() { register(newCommitCommand) }

func newCommitCommand() *cobra.Command {
	var o engine.CommitOptions
	c := &cobra.Command{
		Use:   "commit [flags] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create an image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			r, err := lookup(e, args[0])
			if err != nil {
				return err
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			img, err := e.Commit(c.Context(), r, ref, o)
			if err != nil {
				return err
			}
			fmt.Println(img.ID())
			return nil
		},
	}
	c.Flags().StringVarP(&o.Author, "author", "a", "", "author")
	c.Flags().StringVarP(&o.Message, "message", "m", "", "commit message")
	return c
}
