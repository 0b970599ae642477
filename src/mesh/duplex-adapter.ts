// A plain JS Duplex in front of another stream. Node's HTTP server reads a socket's native
// handle directly when it has one (llhttp consume); an HTTP/2 CONNECT stream has a native
// handle of another kind, and serving HTTP/1.1 on it that way corrupts the first bytes of the
// response. Fed through this adapter, the server sees an ordinary stream.
import { Duplex } from 'node:stream';

export function plainDuplex(inner: Duplex): Duplex {
  const outer = new Duplex({
    allowHalfOpen: true,
    read() { inner.resume(); },
    write(chunk, encoding, cb) { inner.write(chunk, encoding, cb); },
    final(cb) { inner.end(cb); },
    destroy(err, cb) {
      inner.destroy(err ?? undefined);
      cb(err);
    },
  });
  inner.on('data', (b: Buffer) => { if (!outer.push(b)) inner.pause(); });
  inner.on('end', () => outer.push(null));
  inner.on('error', (e) => outer.destroy(e));
  inner.on('close', () => { if (!outer.destroyed) outer.destroy(); });
  return outer;
}
