// Resetting a TCP connection that TLS already wraps. Node's resetAndDestroy() only works on
// a socket that owns its TCP handle; under a TLSSocket the handle is shared with the TLS
// wrap, and resetting it underneath crashes the process. SO_LINGER {on, 0} on the kernel fd
// makes the close that destroy() performs send a RST instead of a FIN, which is the same
// thing done from below.
import koffi from 'koffi';
import type net from 'node:net';
import { SOL_SOCKET, socketFd } from '../host/sys.js';

const SO_LINGER = 13;
const setsockopt = koffi.load('libc.so.6').func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)');

/** Destroys `tlsSock` so that the peer sees a reset; `raw` is the TCP socket it wraps. */
export function resetWrapped(raw: net.Socket, tlsSock: net.Socket): void {
  try {
    const linger = Buffer.alloc(8);
    linger.writeInt32LE(1, 0);
    linger.writeInt32LE(0, 4);
    setsockopt(socketFd(raw), SOL_SOCKET, SO_LINGER, linger, 8);
  } catch {
    // Already closed: nothing left to reset.
  }
  tlsSock.destroy();
}
