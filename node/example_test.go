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
// rtcnode.Start the same API runs over WebRTC data channels through a signaling server.
func Example() {
	network, err := memlink.NewNetwork(memlink.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer network.Close()
	// A node's ID is the hash of its identity key; names are for printing. Real nodes keep
	// their key in a file (identity.LoadOrCreateKey) or make a fresh one.
	names := map[string]string{}
	start := func(name string, contacts ...string) *node.Node {
		key, err := identity.GenerateKey()
		if err != nil {
			panic(err)
		}
		names[key.ID()] = name
		tr, err := network.Transport(key.ID())
		if err != nil {
			panic(err)
		}
		cfg := node.DefaultLANConfig()
		cfg.Key, cfg.Transport, cfg.Contacts = key, tr, contacts
		n, err := node.New(cfg)
		if err != nil {
			panic(err)
		}
		return n
	}
	alice := start("alice")
	defer alice.Close()
	bob := start("bob", alice.ID())
	defer bob.Close()

	// Wait until bob has a neighbour: a broadcast made before that waits for the first one.
	for ev := range bob.Events() {
		if ev.Type == node.NeighborUp {
			fmt.Println("bob's neighbour:", names[ev.Peer])
			break
		}
	}
	if _, err := bob.Broadcast([]byte("hello, mesh")); err != nil {
		panic(err)
	}
	select {
	case d := <-alice.Deliveries():
		fmt.Printf("alice got %q from %s, %d hop\n", d.Data, names[d.Origin], d.Hops)
	case <-time.After(10 * time.Second):
		fmt.Println("no delivery")
	}
	fmt.Println("alice's neighbours:", len(alice.Neighbors()))
	// Output:
	// bob's neighbour: alice
	// alice got "hello, mesh" from bob, 1 hop
	// alice's neighbours: 1
}
