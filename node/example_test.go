//go:build !js

package node_test

import (
	"fmt"
	"time"

	"github.com/rtcmesh/rtcmesh/identity"
	"github.com/rtcmesh/rtcmesh/link/memlink"
	"github.com/rtcmesh/rtcmesh/node"
)

// Two nodes over in-memory links: the second joins through the first, then broadcasts. With
// node.StartWebRTC the same API runs over WebRTC data channels through a signaling server.
func Example() {
	network, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer network.Close()
	start := func(id string, contacts ...string) *node.Node {
		tr, err := network.Transport(id)
		if err != nil {
			panic(err)
		}
		cfg := node.DefaultLANConfig()
		cfg.Transport, cfg.ID, cfg.Contacts = tr, id, contacts
		n, err := node.New(cfg)
		if err != nil {
			panic(err)
		}
		return n
	}
	alice := start("alice")
	defer alice.Close()
	bob := start("bob", "alice")
	defer bob.Close()

	// Wait until bob has a neighbour: a broadcast made before that reaches nobody.
	for ev := range bob.Events() {
		if ev.Type == node.NeighborUp {
			fmt.Println("bob's neighbour:", ev.Peer)
			break
		}
	}
	if _, err := bob.Broadcast([]byte("hello, mesh")); err != nil {
		panic(err)
	}
	select {
	case d := <-alice.Deliveries():
		fmt.Printf("alice got %q from %s, %d hop\n", d.Data, d.Origin, d.Hops)
	case <-time.After(10 * time.Second):
		fmt.Println("no delivery")
	}
	fmt.Println("alice's neighbours:", len(alice.Neighbors()))
	// Output:
	// bob's neighbour: alice
	// alice got "hello, mesh" from bob, 1 hop
	// alice's neighbours: 1
}

// A node that meets its peers through a signaling server (rtcmesh signal) and links to them
// with WebRTC. Its identity, and so its ID, is kept in a file across restarts.
func ExampleStartWebRTC() {
	id, err := identity.LoadOrCreate("/var/lib/rtcmesh/identity.pem")
	if err != nil {
		panic(err)
	}
	cfg := node.DefaultWebRTCConfig(id, "wss://signal.example.org/ws", "my-network")
	n, err := node.StartWebRTC(cfg)
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
