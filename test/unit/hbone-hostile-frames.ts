// A raw HTTP/2 client for hostile-input tests: it writes frames as given, ignoring the
// limits a well-behaved client (Node's nghttp2, the lab's pool) would respect, and records
// what the server answered frame by frame. HPACK is written as literals without indexing;
// of a response only :status is read, and only when it is a static-table entry (200, 400,
// 404, ...): any other status (and anything Huffman-coded) reads as 'other'.
import tls from 'node:tls';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

// HPACK static table entries a server uses for :status (RFC 7541 appendix A).
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK integer with a `prefix`-bit prefix (RFC 7541 §5.1); `first` carries the high bits of the first byte. */
function hpackInt(n: number, prefix: number, first = 0): Buffer {
  const max = (1 << prefix) - 1;
  if (n < max) return Buffer.from([first | n]);
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

const hpackString = (s: string): Buffer => Buffer.concat([hpackInt(Buffer.byteLength(s), 7), Buffer.from(s)]);

/** A header block of literals without indexing, new names (0x00): no state shared with the server. */
export function headerBlock(headers: Array<[string, string]>): Buffer {
  return Buffer.concat(headers.flatMap(([k, v]) => [Buffer.from([0]), hpackString(k), hpackString(v)]));
}

export const connectHeaders = (authority: string, extra: Array<[string, string]> = []): Array<[string, string]> =>
  [[':method', 'CONNECT'], [':authority', authority], ...extra];

export function settingsFrame(values: Array<[number, number]> = []): Buffer {
  const p = Buffer.alloc(values.length * 6);
  values.forEach(([k, v], i) => {
    p.writeUInt16BE(k, i * 6);
    p.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}

export type ServerEvent =
  | { kind: 'headers'; stream: number; status: number | 'other'; endStream: boolean }
  | { kind: 'data'; stream: number; bytes: number; endStream: boolean }
  | { kind: 'rst'; stream: number; code: number }
  | { kind: 'goaway'; code: number; lastStream: number }
  | { kind: 'ping-ack' }
  | { kind: 'settings'; ack: boolean; values: Record<number, number> }
  | { kind: 'closed' };

export class RawH2 {
  readonly events: ServerEvent[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  nextStream = 1;
  /** A client that stopped reading answers no PING: set false to play one. */
  answerPings = true;

  constructor(readonly sock: tls.TLSSocket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', () => undefined);
    sock.on('close', () => this.push({ kind: 'closed' }));
  }

  /** TLS with `cert`, ALPN h2, then the preface and an empty SETTINGS (acked when the server's arrives). */
  static async open(port: number, o: { ca: string; cert: string; key: string; settings?: Array<[number, number]> }): Promise<RawH2> {
    const sock = await new Promise<tls.TLSSocket>((res, rej) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: o.ca, cert: o.cert, key: o.key, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
      s.once('secureConnect', () => res(s));
      s.once('error', rej);
    });
    const c = new RawH2(sock);
    sock.write(Buffer.concat([PREFACE, settingsFrame(o.settings)]));
    return c;
  }

  get closed(): boolean {
    return this.events.some((e) => e.kind === 'closed');
  }

  write(b: Buffer): boolean {
    if (this.sock.destroyed) return false;
    return this.sock.write(b);
  }

  /** HEADERS (END_HEADERS) opening a new stream; returns its id. */
  request(headers: Array<[string, string]>, endStream = false): number {
    const id = this.nextStream;
    this.nextStream += 2;
    this.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), id, headerBlock(headers)));
    return id;
  }

  find<K extends ServerEvent['kind']>(kind: K, stream?: number): Extract<ServerEvent, { kind: K }> | undefined {
    return this.events.find((e) => e.kind === kind && (stream === undefined || (e as { stream?: number }).stream === stream)) as Extract<ServerEvent, { kind: K }> | undefined;
  }

  /** The server's first answer on `stream`: its HEADERS or its RST_STREAM (or the connection's end). */
  answer(stream: number): ServerEvent | undefined {
    return this.events.find((e) => ((e.kind === 'headers' || e.kind === 'rst') && e.stream === stream) || e.kind === 'goaway' || e.kind === 'closed');
  }

  /** Resolves when `pred` holds over the events so far; rejects after `ms`. */
  until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        rej(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events.slice(-8))}`));
      }, ms);
      const check = (): void => {
        if (!pred()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        res();
      };
      this.waiters.push(check);
    });
  }

  destroy(): void {
    this.sock.destroy();
  }

  private push(e: ServerEvent): void {
    this.events.push(e);
    for (const w of [...this.waiters]) w();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) return;
      const type = this.buf[3];
      const flags = this.buf[4];
      const stream = this.buf.readUInt32BE(5) & 0x7fffffff;
      const p = this.buf.subarray(9, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      this.onFrame(type, flags, stream, p);
    }
  }

  private onFrame(type: number, flags: number, stream: number, p: Buffer): void {
    switch (type) {
      case FRAME.SETTINGS: {
        const values: Record<number, number> = {};
        for (let i = 0; i + 6 <= p.length; i += 6) values[p.readUInt16BE(i)] = p.readUInt32BE(i + 2);
        const ack = (flags & FLAG.ACK) !== 0;
        if (!ack) this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        return this.push({ kind: 'settings', ack, values });
      }
      case FRAME.HEADERS: {
        // Padding/priority flags are never set by Node's server; the first field is :status.
        const first = p[0] ?? 0;
        const status = first & 0x80 ? (STATIC_STATUS[first & 0x7f] ?? 'other') : 'other';
        return this.push({ kind: 'headers', stream, status, endStream: (flags & FLAG.END_STREAM) !== 0 });
      }
      case FRAME.DATA:
        return this.push({ kind: 'data', stream, bytes: p.length, endStream: (flags & FLAG.END_STREAM) !== 0 });
      case FRAME.RST_STREAM:
        return this.push({ kind: 'rst', stream, code: p.readUInt32BE(0) });
      case FRAME.GOAWAY:
        return this.push({ kind: 'goaway', lastStream: p.readUInt32BE(0) & 0x7fffffff, code: p.readUInt32BE(4) });
      case FRAME.PING:
        if (flags & FLAG.ACK) this.push({ kind: 'ping-ack' });
        else if (this.answerPings) this.write(frame(FRAME.PING, FLAG.ACK, 0, p));
        return;
      default:
    }
  }
}
