// Command udpecho answers every UDP datagram on the given port with "pong"
// (busybox has no UDP server); the engine's network tests run it inside a
// container.
package main

import (
	"net"
	"os"
)

func main() {
	port := "5000"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	c, err := net.ListenPacket("udp", ":"+port)
	if err != nil {
		os.Exit(1)
	}
	buf := make([]byte, 1500)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			os.Exit(1)
		}
		c.WriteTo([]byte("pong\n"), from)
	}
}
