// Package composetest holds the smoke test of the deployment files at the repository root:
// it builds the static rtcmesh binary and the FROM scratch image of the Dockerfile (pulling
// nothing from a registry), brings docker-compose.yml up with five nodes under a project name
// of its own, waits until every node has joined, broadcasts through one node's POST
// /broadcast and checks that every node delivered the message, then removes the stack, its
// volumes and the image. It needs a Docker engine and docker-compose (v1, or the v2 plugin),
// skips with a reason without them and fails under RTCMESH_REQUIRE_ALL=1. It talks to the
// containers only through ports published on 127.0.0.1.
package composetest
