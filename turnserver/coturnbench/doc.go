// Package coturnbench holds a side-by-side benchmark of the bundled TURN relay (`rtcmesh turn`)
// against Debian's coturn, driven by coturn's own load tools. It has no code of its own: run
//
//	go test ./turnserver/coturnbench -run '^$' -bench VsCoturn -benchtime 1x -v
//
// with the coturn package installed (apt-get install coturn: turnserver, turnutils_uclient and
// turnutils_peer). The benchmark installs nothing; without those programs it skips with the
// reason (and fails under RTCMESH_REQUIRE_ALL=1, like every optional tier). CI does not run
// benchmarks, so CI does not need coturn. See coturnbench_test.go for what is measured.
package coturnbench
