// DNS over TCP (RFC 1035 §4.2.2, RFC 7766) for both DNS servers of the lab: each message
// behind a 2-byte length, answers written as they are ready (out of order is allowed), an
// idle connection closed after 10 s (RFC 7766 §6.2.3; CoreDNS's default too), and a message
// that gets no answer (unanswerable, or nowhere to forward it) closes the connection, since a
// client would otherwise wait for the idle timeout.
import net from 'node:net';

export const DNS_TCP_IDLE_MS = 10_000;

export interface DnsTcpServer extends net.Server {
  /** Closes the open connections too (close() alone waits for them). */
  destroyConnections(): void;
}

export function dnsTcpServer(answer: (msg: Buffer, sock: net.Socket) => Promise<Buffer | undefined>, idleMs = DNS_TCP_IDLE_MS): DnsTcpServer {
  const conns = new Set<net.Socket>();
  // allowHalfOpen: a client that sends its query and shuts down its side still gets the answer.
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    conns.add(s);
    s.once('close', () => conns.delete(s));
    let buf: Buffer = Buffer.alloc(0);
    let inFlight = 0;
    let peerEnded = false;
    const maybeEnd = (): void => {
      if (peerEnded && inFlight === 0 && !s.destroyed) s.end();
    };
    s.on('error', () => undefined);
    s.setTimeout(idleMs, () => s.destroy());
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + msg.length);
        inFlight++;
        void answer(msg, s).then((r) => {
          inFlight--;
          if (s.destroyed) return;
          if (!r) return void s.destroy();
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          s.write(Buffer.concat([len, r]));
          maybeEnd();
        });
      }
    });
    s.on('end', () => {
      // A message cut short by the end of the stream can never be answered.
      if (buf.length > 0) return void s.destroy();
      peerEnded = true;
      maybeEnd();
    });
  }) as DnsTcpServer;
  server.destroyConnections = () => {
    for (const c of conns) c.destroy();
  };
  return server;
}

/**
 * Binds a DNS server's two sockets on one port number: `first` on `port` (0: the kernel picks),
 * then `second` on the port `first` got. With port 0 that pick may already be held for the
 * other protocol (a TCP connection's port is not a UDP one's), so a pick that collides is
 * released and another one tried; a fixed port that collides fails with the bind error, and
 * either way nothing is left bound on failure (a leaked socket keeps the process alive).
 */
export async function bindOnOnePort<A>(
  port: number,
  first: (port: number) => Promise<{ port: number; bound: A }>,
  second: (port: number) => Promise<void>,
  release: (bound: A) => Promise<void>,
  tries = 20,
): Promise<{ port: number; bound: A }> {
  for (let attempt = 1; ; attempt++) {
    const got = await first(port);
    try {
      await second(got.port);
      return got;
    } catch (e) {
      await release(got.bound);
      const inUse = (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (port !== 0 || !inUse || attempt >= tries) throw e;
    }
  }
}
