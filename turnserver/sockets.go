package turnserver

import "net"

// setSocketBuffers sets a UDP socket's receive and send buffers to size bytes
// (zero leaves them alone), beyond net.core.rmem_max and wmem_max when the
// process has CAP_NET_ADMIN, and returns the receive buffer granted.
func setSocketBuffers(conn net.PacketConn, size int) int {
	udp, ok := conn.(*net.UDPConn)
	if !ok || size <= 0 {
		return 0
	}
	raw, err := udp.SyscallConn()
	if err != nil {
		return 0
	}
	if !forceBuffer(raw, true, size) {
		_ = udp.SetReadBuffer(size) // capped by the kernel, never refused
	}
	if !forceBuffer(raw, false, size) {
		_ = udp.SetWriteBuffer(size)
	}
	return socketBuffer(raw, true)
}
