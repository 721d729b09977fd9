//go:build !linux

package turnserver

import (
	"net"
	"net/netip"
	"syscall"
)

const reusePortSupported = false

func setReusePort(syscall.RawConn) error { return nil }

func forceBuffer(syscall.RawConn, bool, int) bool { return false }

func socketBuffer(syscall.RawConn, bool) int { return 0 }

// rawUDP exists on Linux only; elsewhere sockets are written with WriteTo.
type rawUDP struct{}

func newRawUDP(net.PacketConn, int) *rawUDP { return nil }

func (*rawUDP) writeTo([]byte, netip.AddrPort) (int, bool, error) { return 0, false, nil }

func (*rawUDP) readFrom([]byte) (int, *net.UDPAddr, bool, error) { return 0, nil, false, nil }

func newRawUDPHead(net.PacketConn, int, int) *rawUDP { return nil }

func (*rawUDP) next(int) ([]byte, int, *net.UDPAddr, error) { return nil, 0, nil, nil }

func (*rawUDP) buffered() bool { return false }

func (*rawUDP) sendable(netip.AddrPort) bool { return false }

// batchSender exists on Linux only.
type batchSender struct{}

func (*rawUDP) writeBatch(*batchSender, [][]byte, netip.AddrPort) (int, error) { return 0, nil }

// streamSender exists on Linux only; elsewhere stream messages always go through the writer
// goroutine.
type streamSender struct{}

func newStreamSender(net.Conn) *streamSender { return nil }

func (*streamSender) send([]byte) (int, error) { return 0, nil }

func (*streamSender) sendAll([]byte, []int) error { return nil }
