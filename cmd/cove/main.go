// Command cove is cove's daemonless container engine: images (pull, push,
// save, load, import, ...) today; containers, networks and volumes plug
// into the same command frame (cli.go).
package main

import "os"

func main() { os.Exit(run(os.Args[1:])) }
