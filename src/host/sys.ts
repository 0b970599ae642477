// Syscalls Node does not expose, through koffi and libc: entering a network namespace,
// transparent (TPROXY) listeners, spoofed-source upstream sockets, SO_MARK, SO_ORIGINAL_DST,
// TAP devices, and the raw read/write/poll/sendto/recvfrom the userspace Geneve daemon uses.
//
// Sockets made here are plain kernel fds; Node adopts them afterwards
// (`server.listen({ fd })`, `new net.Socket({ fd })`). That is the only way to get options
// that must be set before bind() (IP_TRANSPARENT, IP_FREEBIND) onto a Node socket.
import koffi from 'koffi';
import { openSync, closeSync, constants as fsc } from 'node:fs';
import net from 'node:net';

const libc = koffi.load('libc.so.6');

// Pointers are declared `void *` so callers pass Buffers, which koffi hands over without copying.
const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, void *val, void *len)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)'),
  listen: libc.func('int listen(int fd, int backlog)'),
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)'),
  close: libc.func('int close(int fd)'),
  setns: libc.func('int setns(int fd, int nstype)'),
  // ioctl is variadic in libc; one pointer argument is passed identically on x86_64 and aarch64.
  ioctl: libc.func('int ioctl(int fd, unsigned long req, void *arg)'),
  read: libc.func('long read(int fd, void *buf, unsigned long n)'),
  write: libc.func('long write(int fd, const void *buf, unsigned long n)'),
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)'),
  sendto: libc.func('long sendto(int fd, const void *buf, unsigned long n, int flags, const void *addr, uint32_t alen)'),
  recvfrom: libc.func('long recvfrom(int fd, void *buf, unsigned long n, int flags, void *addr, void *alen)'),
  strerror: libc.func('const char *strerror(int errnum)'),
};

export const AF_INET = 2;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SOL_IP = 0;
export const SO_REUSEADDR = 2;
export const SO_REUSEPORT = 15;
export const SO_RCVBUF = 8;
export const SO_SNDBUF = 7;
export const SO_RCVBUFFORCE = 33;
export const SO_SNDBUFFORCE = 32;
export const SO_MARK = 36;
export const IP_FREEBIND = 15;
export const IP_TRANSPARENT = 19;
export const IP_BIND_ADDRESS_NO_PORT = 24;
export const SO_ORIGINAL_DST = 80;
export const CLONE_NEWNET = 0x40000000;
export const TUNSETIFF = 0x400454ca;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const POLLIN = 0x0001;
export const POLLOUT = 0x0004;
export const MSG_DONTWAIT = 0x40;
export const SIOCGIFINDEX = 0x8933;
export const EAGAIN = 11;
export const EINTR = 4;
export const EINPROGRESS = 115;

// Several names share a number (EAGAIN/EWOULDBLOCK): the first listed is the usual one.
const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(koffi.os.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);

/** A failed syscall: `code` is the errno name (EADDRINUSE...), like Node's own system errors. */
export class SysError extends Error {
  readonly code: string;
  constructor(readonly syscall: string, readonly errno: number, detail?: string) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
    super(`${syscall}${detail ? ` ${detail}` : ''}: ${code} (${c.strerror(errno)})`);
    this.name = 'SysError';
    this.code = code;
  }
}

/** errno of the last libc call made through koffi on this thread. */
export const lastErrno = (): number => koffi.errno();

function check(ret: number, syscall: string, detail?: string): number {
  if (ret < 0) throw new SysError(syscall, koffi.errno(), detail);
  return ret;
}

export function closeFd(fd: number): void {
  c.close(fd);
}

// ---- addresses -------------------------------------------------------------------------

/** struct sockaddr_in: family in host order, port and address in network order. */
export function sockaddrIn(ip: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`not an IPv4 address: ${ip}`);
  b.set(parts, 4);
  return b;
}

export function parseSockaddrIn(b: Buffer): { ip: string; port: number } {
  return { ip: `${b[4]}.${b[5]}.${b[6]}.${b[7]}`, port: b.readUInt16BE(2) };
}

// ---- socket options --------------------------------------------------------------------

export function setIntOpt(fd: number, level: number, name: number, value: number, what = `opt ${level}/${name}`): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  check(c.setsockopt(fd, level, name, v, 4), 'setsockopt', what);
}

export function getIntOpt(fd: number, level: number, name: number, what = `opt ${level}/${name}`): number {
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  check(c.getsockopt(fd, level, name, v, len), 'getsockopt', what);
  return v.readInt32LE();
}

export const setSockMark = (fd: number, mark: number): void => setIntOpt(fd, SOL_SOCKET, SO_MARK, mark | 0, 'SO_MARK');
export const getSockMark = (fd: number): number => getIntOpt(fd, SOL_SOCKET, SO_MARK, 'SO_MARK') >>> 0;

/**
 * Where a REDIRECTed (nat) connection was going before the rewrite. Not for TPROXY:
 * there the accepted socket's own local address already is the original destination.
 */
export function originalDst(fd: number): { ip: string; port: number } {
  const addr = Buffer.alloc(16);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(16);
  check(c.getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, addr, len), 'getsockopt', 'SO_ORIGINAL_DST');
  return parseSockaddrIn(addr);
}

/** The kernel fd behind a connected/listening Node socket (libuv stream handle, Linux). */
export function socketFd(sock: net.Socket | net.Server): number {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no fd (not open yet, or already closed)');
  return fd;
}

// ---- network namespaces ----------------------------------------------------------------

export function setns(fd: number, nstype: number): void {
  check(c.setns(fd, nstype), 'setns');
}

/**
 * Runs `fn` with the calling thread inside /run/netns/<name>, then returns the thread to the
 * namespace it was in, even when `fn` throws.
 *
 * Only synchronous work is safe inside: sockets made with the functions of this module
 * (koffi, synchronous) land in the target namespace. Node's own `net.connect()` and
 * `server.listen(port)` create their sockets a tick later, back in the original namespace,
 * and libuv's thread pool never moves. Call from the main thread only.
 */
export function withNetns<T>(netnsName: string, fn: () => T): T {
  // thread-self, not self: setns changes only the calling thread.
  const orig = openSync('/proc/thread-self/ns/net', fsc.O_RDONLY);
  let target: number | undefined;
  try {
    target = openSync(`/run/netns/${netnsName}`, fsc.O_RDONLY);
    check(c.setns(target, CLONE_NEWNET), 'setns', `/run/netns/${netnsName}`);
    try {
      return fn();
    } finally {
      if (c.setns(orig, CLONE_NEWNET) < 0) {
        // Staying in the wrong namespace would silently misplace every later socket.
        process.stderr.write(`fatal: cannot return to the original netns: ${new SysError('setns', koffi.errno()).message}\n`);
        process.abort();
      }
    }
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(orig);
  }
}

// ---- TCP sockets for transparent proxying ----------------------------------------------

function tcpSocket(): number {
  return check(c.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), 'socket');
}

function closingOnError<T>(fd: number, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

export interface TransparentListenOptions {
  host: string;
  port: number;
  backlog?: number;
  mark?: number;
  /**
   * SO_REUSEPORT: a second process of the same uid may bind the same address while this one
   * listens, and the kernel spreads new connections over both. A ztunnel sets it so its
   * successor can take over the port before it stops accepting (graceful restart).
   */
  reusePort?: boolean;
}

/**
 * A listening TCP fd with IP_TRANSPARENT, so TPROXY can hand it connections addressed to any IP.
 * Use with `net.createServer(handler).listen({ fd })`; each accepted socket's
 * `localAddress`/`localPort` is the connection's original destination.
 */
export function transparentListenFd(opts: TransparentListenOptions): number {
  return tcpListenFd({ ...opts, transparent: true });
}

/** A listening TCP fd, optionally IP_TRANSPARENT and/or SO_REUSEPORT (which Node 20 cannot set). */
export function tcpListenFd(opts: TransparentListenOptions & { transparent?: boolean }): number {
  const fd = tcpSocket();
  return closingOnError(fd, () => {
    setIntOpt(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'SO_REUSEADDR');
    if (opts.reusePort) setIntOpt(fd, SOL_SOCKET, SO_REUSEPORT, 1, 'SO_REUSEPORT');
    if (opts.transparent) setIntOpt(fd, SOL_IP, IP_TRANSPARENT, 1, 'IP_TRANSPARENT');
    if (opts.mark !== undefined) setSockMark(fd, opts.mark);
    check(c.bind(fd, sockaddrIn(opts.host, opts.port), 16), 'bind', `${opts.host}:${opts.port}`);
    check(c.listen(fd, opts.backlog ?? 511), 'listen');
    return fd;
  });
}

export interface SpoofedConnectOptions {
  srcIp: string;
  srcPort?: number;
  dstIp: string;
  dstPort: number;
  mark?: number;
}

/**
 * A TCP fd bound to `srcIp` (any address, local or not: IP_TRANSPARENT + IP_FREEBIND),
 * not yet connected. Without `srcPort` the port is picked at connect() time
 * (IP_BIND_ADDRESS_NO_PORT), so many upstreams can share one spoofed IP.
 */
export function spoofedSocketFd(opts: { srcIp: string; srcPort?: number; mark?: number }): number {
  const fd = tcpSocket();
  return closingOnError(fd, () => {
    setIntOpt(fd, SOL_IP, IP_TRANSPARENT, 1, 'IP_TRANSPARENT');
    setIntOpt(fd, SOL_IP, IP_FREEBIND, 1, 'IP_FREEBIND');
    if (opts.srcPort) setIntOpt(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'SO_REUSEADDR');
    else setIntOpt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1, 'IP_BIND_ADDRESS_NO_PORT');
    if (opts.mark !== undefined) setSockMark(fd, opts.mark);
    check(c.bind(fd, sockaddrIn(opts.srcIp, opts.srcPort ?? 0), 16), 'bind', `${opts.srcIp}:${opts.srcPort ?? 0}`);
    return fd;
  });
}

/**
 * An upstream TCP connection whose source address is `srcIp` (the client's, for a transparent
 * proxy). Returns a Node socket that emits 'connect' / 'error' like `net.connect()`.
 *
 * Node adopts the bound fd (`new net.Socket({ fd })`) and libuv's connect() reuses it, so the
 * SYN leaves with the spoofed source (checked by test/e2e/sys.test.ts).
 * Replies reach the socket only if the namespace routes them locally
 * (`-m socket --transparent` mark + `local 0.0.0.0/0` route).
 */
export function connectSpoofed(opts: SpoofedConnectOptions): net.Socket {
  const fd = spoofedSocketFd(opts);
  let sock: net.Socket;
  try {
    sock = new net.Socket({ fd });
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return sock.connect({ host: opts.dstIp, port: opts.dstPort });
}

// ---- TAP devices -----------------------------------------------------------------------

/**
 * Attaches to the TAP device `name` (normally a persistent one from `ip tuntap add mode tap`)
 * and returns its fd: each read() is one Ethernet frame the kernel sent out of the device,
 * each write() one frame received on it. Blocking unless `nonblock`.
 */
export function openTap(name: string, opts: { nonblock?: boolean; create?: boolean } = {}): number {
  // TUNSETIFF on a missing name would quietly create a throwaway TAP that vanishes with us.
  if (!opts.create) ifIndex(name);
  const fd = openSync('/dev/net/tun', fsc.O_RDWR | (opts.nonblock ? fsc.O_NONBLOCK : 0));
  try {
    const ifr = ifreq(name);
    ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI, 16);
    check(c.ioctl(fd, TUNSETIFF, ifr), 'ioctl', `TUNSETIFF ${name}`);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The interface's index in the calling thread's netns; SysError ENODEV when there is none. */
export function ifIndex(name: string): number {
  const ifr = ifreq(name);
  const fd = check(c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), 'socket');
  try {
    check(c.ioctl(fd, SIOCGIFINDEX, ifr), 'ioctl', `SIOCGIFINDEX ${name}`);
    return ifr.readInt32LE(16);
  } finally {
    c.close(fd);
  }
}

/** struct ifreq (40 bytes on 64-bit Linux) with ifr_name set. */
function ifreq(name: string): Buffer {
  if (!name || Buffer.byteLength(name) > 15) throw new Error(`bad interface name: "${name}"`);
  const ifr = Buffer.alloc(40);
  ifr.write(name, 0, 'latin1');
  return ifr;
}

// ---- raw I/O for data-path threads -----------------------------------------------------
// These return -errno instead of throwing: on the per-packet path EAGAIN is normal and an
// exception per idle moment would cost more than the packet.

const ret = (n: number): number => (n < 0 ? -koffi.errno() : n);

export const sysRead = (fd: number, buf: Uint8Array, len = buf.byteLength): number => ret(c.read(fd, buf, len));
export const sysWrite = (fd: number, buf: Uint8Array, len = buf.byteLength): number => ret(c.write(fd, buf, len));
export const sysSendTo = (fd: number, buf: Uint8Array, len: number, addr: Buffer, flags = 0): number =>
  ret(c.sendto(fd, buf, len, flags, addr, addr.length));
/** `addr` (16 bytes) receives the sender's sockaddr_in; `addrLen` (4 bytes) is scratch. */
export const sysRecvFrom = (fd: number, buf: Uint8Array, len: number, addr: Buffer, addrLen: Buffer, flags = 0): number => {
  addrLen.writeUInt32LE(addr.length);
  return ret(c.recvfrom(fd, buf, len, flags, addr, addrLen));
};

/** poll(2) over `count` struct pollfd (8 bytes each: int fd, short events, short revents) in `fds`: how many are ready, 0 on timeout, or -errno. */
export const sysPoll = (fds: Buffer, count: number, timeoutMs: number): number => ret(c.poll(fds, count, timeoutMs));

/** Waits up to `timeoutMs` for `events` (POLLIN/POLLOUT) on `fd`: 1 ready, 0 timeout, -errno. */
export function pollFd(fd: number, events: number, timeoutMs: number, scratch = Buffer.alloc(8)): number {
  scratch.writeInt32LE(fd, 0);
  scratch.writeInt16LE(events, 4);
  scratch.writeInt16LE(0, 6);
  return ret(c.poll(scratch, 1, timeoutMs));
}

/**
 * A UDP socket bound to ip:port, for the data path. Blocking unless `nonblock`, so several
 * threads can share it: senders get backpressure, receivers pass MSG_DONTWAIT and poll.
 */
export function udpSocketFd(opts: { ip: string; port: number; bufBytes?: number; mark?: number; nonblock?: boolean; reusePort?: boolean }): number {
  const fd = check(c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (opts.nonblock ? SOCK_NONBLOCK : 0), 0), 'socket');
  return closingOnError(fd, () => {
    if (opts.reusePort) setIntOpt(fd, SOL_SOCKET, SO_REUSEPORT, 1, 'SO_REUSEPORT');
    if (opts.bufBytes) {
      // FORCE variants ignore rmem_max/wmem_max (we are root); fall back if not permitted.
      if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, int32(opts.bufBytes), 4) < 0)
        setIntOpt(fd, SOL_SOCKET, SO_RCVBUF, opts.bufBytes, 'SO_RCVBUF');
      if (c.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, int32(opts.bufBytes), 4) < 0)
        setIntOpt(fd, SOL_SOCKET, SO_SNDBUF, opts.bufBytes, 'SO_SNDBUF');
    }
    if (opts.mark !== undefined) setSockMark(fd, opts.mark);
    check(c.bind(fd, sockaddrIn(opts.ip, opts.port), 16), 'bind', `udp ${opts.ip}:${opts.port}`);
    return fd;
  });
}

function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}
