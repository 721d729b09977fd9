//go:build linux

package turnserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"
)

// rawUDP sends and receives a UDP socket's datagrams with raw sendto and recvfrom system calls.
// Go's own WriteTo and ReadFrom enter every system call through the scheduler (entersyscall),
// which wakes the runtime's monitor thread whenever the process was idle; on a relay, whose work
// is little else than these calls, the monitor's wakeups and the thread handoffs they cause were
// a fifth of the CPU time (perf). The socket is non-blocking (Go makes every socket so), so
// neither call ever waits: on EAGAIN the poller waits for the socket as usual. RawConn.Read and
// Write keep the descriptor from being closed and reused while a call runs.
type rawUDP struct {
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket: IPv4 destinations are sent as IPv4-mapped addresses
}

// newRawUDP returns nil when conn is not a UDP socket whose family can be read.
func newRawUDP(conn net.PacketConn) *rawUDP {
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		return nil
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	domain, sockErr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) {
		domain, sockErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
	}); err != nil || sockErr != nil || (domain != syscall.AF_INET && domain != syscall.AF_INET6) {
		return nil
	}
	return &rawUDP{rc: rc, v6: domain == syscall.AF_INET6}
}

// writeTo sends p to addr. ok is false when it cannot be sent this way (an empty datagram, or
// an IPv6 destination on an IPv4 socket): the caller then uses the socket's WriteTo, which
// reports the error as Go does.
func (r *rawUDP) writeTo(p []byte, addr netip.AddrPort) (n int, ok bool, err error) {
	var sa [syscall.SizeofSockaddrInet6]byte
	var saLen uintptr
	ip := addr.Addr()
	switch {
	case len(p) == 0:
		return 0, false, nil
	case addr.Addr().Zone() != "":
		return 0, false, nil // a scoped address: WriteTo resolves the zone
	case r.v6:
		binary.NativeEndian.PutUint16(sa[0:2], syscall.AF_INET6)
		binary.BigEndian.PutUint16(sa[2:4], addr.Port())
		a16 := ip.As16() // an IPv4 address as ::ffff:a.b.c.d
		copy(sa[8:24], a16[:])
		saLen = syscall.SizeofSockaddrInet6
	case ip.Unmap().Is4():
		binary.NativeEndian.PutUint16(sa[0:2], syscall.AF_INET)
		binary.BigEndian.PutUint16(sa[2:4], addr.Port())
		a4 := ip.Unmap().As4()
		copy(sa[4:8], a4[:])
		saLen = syscall.SizeofSockaddrInet4
	default:
		return 0, false, nil
	}
	var errno syscall.Errno
	werr := r.rc.Write(func(fd uintptr) bool {
		sent, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0,
			uintptr(unsafe.Pointer(&sa[0])), saLen)
		if e == syscall.EAGAIN {
			return false // wait for room, as WriteTo would
		}
		n, errno = int(sent), e
		return true
	})
	switch {
	case werr != nil:
		return 0, true, werr
	case errno != 0:
		return 0, true, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: errno}
	}
	return n, true, nil
}

// readFrom reads one datagram into p. ok is false when it cannot be read this way (an empty
// buffer); the caller then uses the socket's ReadFrom.
func (r *rawUDP) readFrom(p []byte) (n int, addr *net.UDPAddr, ok bool, err error) {
	if len(p) == 0 {
		return 0, nil, false, nil
	}
	var sa [syscall.SizeofSockaddrAny]byte
	var errno syscall.Errno
	rerr := r.rc.Read(func(fd uintptr) bool {
		saLen := uint32(len(sa))
		got, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0,
			uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&saLen)))
		if e == syscall.EAGAIN {
			return false // wait for a datagram, as ReadFrom would
		}
		n, errno = int(got), e
		return true
	})
	switch {
	case rerr != nil:
		return 0, nil, true, rerr
	case errno != 0:
		return 0, nil, true, &net.OpError{Op: "read", Net: "udp", Err: errno}
	}
	port := int(binary.BigEndian.Uint16(sa[2:4]))
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case syscall.AF_INET:
		return n, &net.UDPAddr{IP: net.IPv4(sa[4], sa[5], sa[6], sa[7]), Port: port}, true, nil
	case syscall.AF_INET6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, sa[8:24])
		a := &net.UDPAddr{IP: ip, Port: port}
		if scope := binary.NativeEndian.Uint32(sa[24:28]); scope != 0 {
			a.Zone = strconv.FormatUint(uint64(scope), 10) // net resolves numeric zones
		}
		return n, a, true, nil
	default:
		return n, nil, true, &net.OpError{Op: "read", Net: "udp", Err: syscall.EAFNOSUPPORT}
	}
}
