//go:build linux

package turnserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP sends and receives a UDP socket's datagrams with raw sendto and recvmmsg system calls.
// Go's own WriteTo and ReadFrom enter every system call through the scheduler (entersyscall),
// which wakes the runtime's monitor thread whenever the process was idle; on a relay, whose work
// is little else than these calls, the monitor's wakeups and the thread handoffs they cause were
// a fifth of the CPU time (perf). The socket is non-blocking (Go makes every socket so), so
// neither call ever waits: on EAGAIN the poller waits for the socket as usual. RawConn.Read and
// Write keep the descriptor from being closed and reused while a call runs.
//
// Reads take up to Config.ReadBatch queued datagrams in one recvmmsg call and hand them out one
// per readFrom, so a burst costs one system call rather than one per datagram. Neither path
// allocates per datagram: the read state is the socket's own (one read loop per socket), send
// state comes from a pool, and source addresses come from a small cache (see addrCache).
type rawUDP struct {
	rc syscall.RawConn
	v6 bool // an AF_INET6 socket: IPv4 destinations are sent as IPv4-mapped addresses

	rd    batchReader // used only by the socket's one read loop
	sends sync.Pool   // of *sendOp
}

// mmsghdr is struct mmsghdr of recvmmsg(2): a message header and the length received.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
}

// batchReader is the state of one socket's batched reads.
type batchReader struct {
	size  int // datagrams per call, Config.ReadBatch or RelayReadBatch
	head  int // bytes of room before each datagram in its buffer (a relay socket's ChannelData header)
	bufs  [][]byte
	names [][syscall.SizeofSockaddrAny]byte
	iovs  []syscall.Iovec
	hdrs  []mmsghdr
	got   int           // datagrams in the batch
	next  int           // the next one to hand out
	errno syscall.Errno // of the last call
	call  func(fd uintptr) bool
	addrs addrCache
}

// newRawUDP returns nil when conn is not a UDP socket whose family can be read. batch is how
// many datagrams one read takes at most (Config.ReadBatch).
func newRawUDP(conn net.PacketConn, batch int) *rawUDP {
	return newRawUDPHead(conn, batch, 0)
}

// newRawUDPHead is newRawUDP for a reader that keeps head bytes of room before each datagram
// (see next).
func newRawUDPHead(conn net.PacketConn, batch, head int) *rawUDP {
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
	r := &rawUDP{rc: rc, v6: domain == syscall.AF_INET6}
	r.rd.size = max(1, batch)
	r.rd.head = head
	r.rd.call = r.rd.recv
	r.sends.New = func() any {
		op := &sendOp{}
		op.call = op.send
		return op
	}
	return r
}

// sendOp is the state of one sendto call, pooled so that sending allocates nothing: the
// closure RawConn.Write takes escapes, and so would everything it captured.
type sendOp struct {
	p     []byte
	sa    [syscall.SizeofSockaddrInet6]byte
	saLen uintptr
	n     int
	errno syscall.Errno
	call  func(fd uintptr) bool
}

func (op *sendOp) send(fd uintptr) bool {
	sent, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&op.p[0])), uintptr(len(op.p)), 0,
		uintptr(unsafe.Pointer(&op.sa[0])), op.saLen)
	if e == syscall.EAGAIN {
		return false // wait for room, as WriteTo would
	}
	op.n, op.errno = int(sent), e
	return true
}

// writeTo sends p to addr. ok is false when it cannot be sent this way (an empty datagram, or
// an IPv6 destination on an IPv4 socket): the caller then uses the socket's WriteTo, which
// reports the error as Go does.
func (r *rawUDP) writeTo(p []byte, addr netip.AddrPort) (n int, ok bool, err error) {
	ip := addr.Addr()
	if len(p) == 0 || ip.Zone() != "" || (!r.v6 && !ip.Unmap().Is4()) {
		return 0, false, nil // a scoped address: WriteTo resolves the zone
	}
	op := r.sends.Get().(*sendOp) //nolint:forcetypeassert // the pool holds nothing else
	defer r.sends.Put(op)
	op.p, op.n, op.errno = p, 0, 0
	op.saLen = r.sockaddr(&op.sa, addr)
	werr := r.rc.Write(op.call)
	op.p = nil
	switch {
	case werr != nil:
		return 0, true, werr
	case op.errno != 0:
		return 0, true, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: op.errno}
	}
	return op.n, true, nil
}

// sendable reports whether writeTo and writeBatch can send to addr.
func (r *rawUDP) sendable(addr netip.AddrPort) bool {
	ip := addr.Addr()
	return ip.Zone() == "" && (r.v6 || ip.Unmap().Is4())
}

// sockaddr writes addr (sendable) to sa as the socket's family takes it, and returns its length.
func (r *rawUDP) sockaddr(sa *[syscall.SizeofSockaddrInet6]byte, addr netip.AddrPort) uintptr {
	ip := addr.Addr()
	if r.v6 {
		*sa = [syscall.SizeofSockaddrInet6]byte{}
		binary.NativeEndian.PutUint16(sa[0:2], syscall.AF_INET6)
		binary.BigEndian.PutUint16(sa[2:4], addr.Port())
		a16 := ip.As16() // an IPv4 address as ::ffff:a.b.c.d
		copy(sa[8:24], a16[:])
		return syscall.SizeofSockaddrInet6
	}
	binary.NativeEndian.PutUint16(sa[0:2], syscall.AF_INET)
	binary.BigEndian.PutUint16(sa[2:4], addr.Port())
	a4 := ip.Unmap().As4()
	copy(sa[4:8], a4[:])
	clear(sa[8:16])
	return syscall.SizeofSockaddrInet4
}

// batchSender is the state of one sender's sendmmsg calls: a relay socket's read loop sending
// ChannelData to its client through the listener socket. It allocates only when a batch is
// larger than any before.
type batchSender struct {
	hdrs  []mmsghdr
	iovs  []syscall.Iovec
	sa    [syscall.SizeofSockaddrInet6]byte
	done  int           // messages handled (sent, or failed with an error)
	errno syscall.Errno // the last error of a message
	fails int           // messages that failed
	call  func(fd uintptr) bool
}

func (m *batchSender) send(fd uintptr) bool {
	for m.done < len(m.hdrs) {
		sent, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[m.done])),
			uintptr(len(m.hdrs)-m.done), 0, 0, 0)
		switch {
		case e == 0 && sent == 0: // never for a datagram socket; counted as failed rather than retried
			m.errno = syscall.EIO
			m.fails += len(m.hdrs) - m.done
			m.done = len(m.hdrs)
		case e == 0:
			m.done += int(sent)
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return false // wait for room, as WriteTo would
		default: // the first message failed: skip it, as its own sendto would have failed
			m.errno = e
			m.fails++
			m.done++
		}
	}
	return true
}

// writeBatch sends each of msgs (none empty) to addr (sendable) in as few sendmmsg calls as the
// socket takes, waiting for room as WriteTo would. It returns how many failed, and the last
// error.
func (r *rawUDP) writeBatch(m *batchSender, msgs [][]byte, addr netip.AddrPort) (fails int, err error) {
	if m.call == nil {
		m.call = m.send
	}
	saLen := r.sockaddr(&m.sa, addr)
	if cap(m.hdrs) < len(msgs) {
		m.hdrs = make([]mmsghdr, len(msgs))
		m.iovs = make([]syscall.Iovec, len(msgs))
	}
	m.hdrs, m.iovs = m.hdrs[:len(msgs)], m.iovs[:len(msgs)]
	for i, p := range msgs {
		m.iovs[i].Base = &p[0]
		m.iovs[i].SetLen(len(p))
		m.hdrs[i] = mmsghdr{hdr: syscall.Msghdr{Name: &m.sa[0], Namelen: uint32(saLen), Iov: &m.iovs[i], Iovlen: 1}}
	}
	m.done, m.errno, m.fails = 0, 0, 0
	werr := r.rc.Write(m.call)
	for i := range m.iovs {
		m.iovs[i].Base = nil // keep no datagram buffer reachable
	}
	switch {
	case werr != nil:
		return len(msgs) - m.done + m.fails, werr
	case m.errno != 0:
		return m.fails, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(addr), Err: m.errno}
	}
	return 0, nil
}

// recv is one recvmmsg call into the batch buffers.
func (b *batchReader) recv(fd uintptr) bool {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = uint32(len(b.names[i]))
		b.hdrs[i].hdr.Flags = 0
		b.hdrs[i].len = 0
	}
	got, _, e := syscall.RawSyscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)), 0, 0, 0)
	if e == syscall.EAGAIN {
		return false // wait for a datagram, as ReadFrom would
	}
	b.got, b.next, b.errno = int(got), 0, e
	if e != 0 {
		b.got = 0
	}
	return true
}

// setup allocates the batch buffers on the first read: each takes a datagram of up to size
// bytes after head bytes of room, and has 3 bytes to spare after it (ChannelData padding).
func (b *batchReader) setup(size int) {
	b.bufs = make([][]byte, b.size)
	b.names = make([][syscall.SizeofSockaddrAny]byte, b.size)
	b.iovs = make([]syscall.Iovec, b.size)
	b.hdrs = make([]mmsghdr, b.size)
	for i := range b.size {
		b.bufs[i] = make([]byte, b.head+size+3)
		b.iovs[i].Base = &b.bufs[i][b.head]
		b.iovs[i].SetLen(size)
		b.hdrs[i].hdr.Name = &b.names[i][0]
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.Iovlen = 1
	}
}

// readFrom reads one datagram into p: the next of the batch, or the first of a new one. ok is
// false when it cannot be read this way (an empty buffer); the caller then uses the socket's
// ReadFrom. Only one goroutine may call it at a time (pion/turn reads each socket from one).
func (r *rawUDP) readFrom(p []byte) (n int, addr *net.UDPAddr, ok bool, err error) {
	if len(p) == 0 {
		return 0, nil, false, nil
	}
	buf, n, addr, err := r.next(len(p))
	if buf != nil {
		copy(p, buf[r.rd.head:r.rd.head+n])
	}
	return n, addr, true, err
}

// next returns the next datagram of the batch, reading a new batch (and waiting for one) when
// it is used up: its n bytes start at buf[head], where head is the room the reader keeps before
// each datagram, and buf has 3 bytes to spare after them. buf is valid until the next read of a
// batch, that is, until a call of next when buffered is false. size is the most a datagram may
// have (longer ones are cut), and must not change. Only one goroutine may call it at a time.
func (r *rawUDP) next(size int) (buf []byte, n int, addr *net.UDPAddr, err error) {
	b := &r.rd
	if b.next >= b.got {
		if b.bufs == nil {
			b.setup(size)
		}
		if rerr := r.rc.Read(b.call); rerr != nil {
			return nil, 0, nil, rerr
		}
		if b.errno != 0 {
			return nil, 0, nil, &net.OpError{Op: "read", Net: "udp", Err: b.errno}
		}
		if b.got == 0 {
			return nil, 0, nil, nil
		}
	}
	i := b.next
	b.next++
	n = min(int(b.hdrs[i].len), size)
	addr, err = b.addrs.lookup(b.names[i][:])
	return b.bufs[i], n, addr, err
}

// buffered reports whether datagrams of the last batch are still to be handed out.
func (r *rawUDP) buffered() bool { return r.rd.next < r.rd.got }

// addrCache maps source sockaddrs to the *net.UDPAddr handed out for them last time, so that
// a busy socket does not allocate an address per datagram. Handed-out addresses are never
// changed (pion/turn only reads and stores them), so one can be handed out again. It is
// direct-mapped by port and address: a miss allocates and replaces the slot.
type addrCache struct {
	slots [64]struct {
		key  netip.AddrPort
		addr *net.UDPAddr
	}
}

func (c *addrCache) lookup(sa []byte) (*net.UDPAddr, error) {
	port := binary.BigEndian.Uint16(sa[2:4])
	var ip netip.Addr
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case syscall.AF_INET:
		ip = netip.AddrFrom4([4]byte(sa[4:8]))
	case syscall.AF_INET6:
		if scope := binary.NativeEndian.Uint32(sa[24:28]); scope != 0 {
			// Scoped (link-local) sources are rare: not cached.
			return &net.UDPAddr{IP: net.IP(slices.Clone(sa[8:24])), Port: int(port), Zone: strconv.FormatUint(uint64(scope), 10)}, nil
		}
		ip = netip.AddrFrom16([16]byte(sa[8:24]))
	default:
		return nil, &net.OpError{Op: "read", Net: "udp", Err: syscall.EAFNOSUPPORT}
	}
	key := netip.AddrPortFrom(ip, port)
	slot := &c.slots[addrSlot(key)]
	if slot.addr != nil && slot.key == key {
		return slot.addr, nil
	}
	h := ip.As16()
	addr := &net.UDPAddr{IP: make(net.IP, net.IPv6len), Port: int(port)}
	copy(addr.IP, h[:]) // an IPv4 source as ::ffff:a.b.c.d, as net.IPv4 gives it
	slot.key, slot.addr = key, addr
	return addr, nil
}

// addrSlot is where addrCache keeps the address of key.
func addrSlot(key netip.AddrPort) int {
	h := key.Addr().As16()
	return (int(key.Port()) ^ int(h[15]) ^ int(h[14])<<3) % len(addrCache{}.slots)
}

// streamSender writes a TCP socket with raw send calls that never raise SIGPIPE, each message
// with its own call and MSG_EOR, so that no later data joins the segment that ends it (see
// streamWriter). It allocates nothing per call; its caller serialises the calls.
type streamSender struct {
	rc    syscall.RawConn
	p     []byte
	ends  []int // sendAll: where each message in p ends
	off   int   // sendAll: bytes of p sent
	next  int   // sendAll: the message being sent
	n     int
	errno syscall.Errno
	call  func(fd uintptr) bool
	all   func(fd uintptr) bool
}

// streamSendFlags: never wait (the poller does), never raise SIGPIPE, end the segment here.
const streamSendFlags = syscall.MSG_DONTWAIT | syscall.MSG_NOSIGNAL | syscall.MSG_EOR

// newStreamSender returns nil when conn is not a TCP connection.
func newStreamSender(conn net.Conn) *streamSender {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return nil
	}
	s := &streamSender{rc: rc}
	s.call = s.sendCall
	s.all = s.sendAllCall
	return s
}

func (s *streamSender) sendCall(fd uintptr) bool {
	sent, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&s.p[0])), uintptr(len(s.p)),
		streamSendFlags, 0, 0)
	s.n, s.errno = int(sent), e
	return true // never wait for room: the caller queues what is left
}

// send writes as much of p (one message, or the rest of one; not empty) as the kernel takes
// now: 0 and no error when the socket's send buffer is full.
func (s *streamSender) send(p []byte) (int, error) {
	s.p, s.n, s.errno = p, 0, 0
	err := s.rc.Write(s.call)
	s.p = nil
	switch {
	case err != nil:
		return 0, err //nolint:wrapcheck // the caller wraps it with the client's address
	case s.errno == syscall.EAGAIN:
		return 0, nil
	case s.errno != 0:
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: s.errno}
	}
	return s.n, nil
}

// sendAllCall sends the messages of p from off on, one call each, until all are sent, the
// socket's buffer is full (false: the poller waits for room and calls again) or a call fails.
func (s *streamSender) sendAllCall(fd uintptr) bool {
	for s.off < len(s.p) {
		for s.ends[s.next] <= s.off {
			s.next++
		}
		end := s.ends[s.next]
		sent, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&s.p[s.off])), uintptr(end-s.off),
			streamSendFlags, 0, 0)
		switch e {
		case 0:
			s.off += int(sent)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.errno = e
			return true
		}
	}
	return true
}

// sendAll writes p, whose messages end at ends, waiting for room as long as it takes.
func (s *streamSender) sendAll(p []byte, ends []int) error {
	if len(p) == 0 {
		return nil
	}
	s.p, s.ends, s.off, s.next, s.errno = p, ends, 0, 0, 0
	err := s.rc.Write(s.all)
	s.p, s.ends = nil, nil
	switch {
	case err != nil:
		return err //nolint:wrapcheck // the caller wraps it with the client's address
	case s.errno != 0:
		return &net.OpError{Op: "write", Net: "tcp", Err: s.errno}
	}
	return nil
}
