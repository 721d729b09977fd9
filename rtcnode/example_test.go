//go:build !js

package rtcnode_test

import (
	"fmt"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/rtcnode"
)

// A node that meets its peers through a signaling server (rtcmesh signal) and links to them
// with WebRTC. Its identity key, and so its ID, is kept in a file across restarts.
func ExampleStart() {
	key, err := identity.LoadOrCreateKey("/var/lib/rtcmesh/node.key")
	if err != nil {
		panic(err)
	}
	cfg := rtcnode.DefaultConfig(key, "wss://signal.example.org/ws", "my-network")
	n, err := rtcnode.Start(cfg)
	if err != nil {
		panic(err)
	}
	defer n.Close()
	go func() {
		for ev := range n.Events() {
			fmt.Println(ev.Type, ev.Peer, ev.Path, ev.Reason)
		}
	}()
	for d := range n.Deliveries() {
		fmt.Printf("%s from %s after %d hops\n", d.Data, d.Origin, d.Hops)
	}
}
