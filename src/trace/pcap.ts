// Reading and writing capture files (pcap and pcapng) and decoding the few protocols the
// lab puts on the wire: Ethernet / Linux cooked (SLL, SLL2) / raw IPv4, TCP, UDP and Geneve
// (RFC 8926) with the inner Ethernet frame. Written here rather than shelled out to tshark
// so a trace can match the same packet across namespaces by its bytes, cheaply.

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_LINUX_SLL2 = 276;
export const GENEVE_UDP_PORT = 6081;

export interface CapturedFrame {
  /** Nanoseconds since the epoch. */
  ts: bigint;
  linktype: number;
  data: Uint8Array;
  origLen: number;
  /** pcapng interface id, when the file has several interfaces. */
  interfaceId?: number;
  comment?: string;
}

export interface CaptureFile {
  format: 'pcap' | 'pcapng';
  frames: CapturedFrame[];
  /** pcapng interface names (if_name), by interface id. */
  interfaceNames: (string | undefined)[];
}

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;

export function readCaptureFile(buf: Uint8Array): CaptureFile {
  if (buf.length < 4) return { format: 'pcap', frames: [], interfaceNames: [] };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(0, true) === PCAPNG_SHB) return readPcapng(buf, dv);
  return readPcap(buf, dv);
}

function readPcap(buf: Uint8Array, dv: DataView): CaptureFile {
  let le: boolean;
  let nano: boolean;
  const m = dv.getUint32(0, true);
  if (m === PCAP_MAGIC_US || m === PCAP_MAGIC_NS) le = true;
  else if (dv.getUint32(0, false) === PCAP_MAGIC_US || dv.getUint32(0, false) === PCAP_MAGIC_NS) le = false;
  else throw new Error('not a pcap or pcapng file');
  nano = dv.getUint32(0, le) === PCAP_MAGIC_NS;
  const linktype = dv.getUint32(20, le) & 0x0fffffff;
  const frames: CapturedFrame[] = [];
  let off = 24;
  // A file still being written may end in a partial record: stop there.
  while (off + 16 <= buf.length) {
    const sec = dv.getUint32(off, le);
    const frac = dv.getUint32(off + 4, le);
    const incl = dv.getUint32(off + 8, le);
    const orig = dv.getUint32(off + 12, le);
    if (off + 16 + incl > buf.length) break;
    const ts = BigInt(sec) * 1_000_000_000n + BigInt(frac) * (nano ? 1n : 1000n);
    frames.push({ ts, linktype, data: buf.subarray(off + 16, off + 16 + incl), origLen: orig });
    off += 16 + incl;
  }
  return { format: 'pcap', frames, interfaceNames: [] };
}

function readPcapng(buf: Uint8Array, dv: DataView): CaptureFile {
  const frames: CapturedFrame[] = [];
  const ifaces: { linktype: number; tsUnitsPerSec: bigint; name?: string }[] = [];
  let le = true;
  let off = 0;
  while (off + 12 <= buf.length) {
    let type = dv.getUint32(off, le);
    if (type === PCAPNG_SHB) {
      le = dv.getUint32(off + 8, true) === 0x1a2b3c4d;
      type = PCAPNG_SHB;
      ifaces.length = 0;
    }
    const len = dv.getUint32(off + 4, le);
    if (len < 12 || off + len > buf.length) break;
    const body = off + 8;
    const end = off + len - 4;
    if (type === 1) {
      const linktype = dv.getUint16(body, le);
      const iface: (typeof ifaces)[number] = { linktype, tsUnitsPerSec: 1_000_000n };
      for (const o of options(dv, body + 8, end, le)) {
        if (o.code === 2) iface.name = new TextDecoder().decode(buf.subarray(o.at, o.at + o.len));
        if (o.code === 9) {
          const r = buf[o.at];
          iface.tsUnitsPerSec = r & 0x80 ? 2n ** BigInt(r & 0x7f) : 10n ** BigInt(r & 0x7f);
        }
      }
      ifaces.push(iface);
    } else if (type === 6) {
      const id = dv.getUint32(body, le);
      const ticks = (BigInt(dv.getUint32(body + 4, le)) << 32n) | BigInt(dv.getUint32(body + 8, le));
      const cap = dv.getUint32(body + 12, le);
      const orig = dv.getUint32(body + 16, le);
      const iface = ifaces[id];
      if (iface) {
        const frame: CapturedFrame = {
          ts: (ticks * 1_000_000_000n) / iface.tsUnitsPerSec, linktype: iface.linktype,
          data: buf.subarray(body + 20, body + 20 + cap), origLen: orig, interfaceId: id,
        };
        for (const o of options(dv, body + 20 + pad4(cap), end, le)) {
          if (o.code === 1) frame.comment = new TextDecoder().decode(buf.subarray(o.at, o.at + o.len));
        }
        frames.push(frame);
      }
    }
    off += len;
  }
  return { format: 'pcapng', frames, interfaceNames: ifaces.map((i) => i.name) };
}

function* options(dv: DataView, start: number, end: number, le: boolean): Generator<{ code: number; at: number; len: number }> {
  let p = start;
  while (p + 4 <= end) {
    const code = dv.getUint16(p, le);
    const len = dv.getUint16(p + 2, le);
    if (code === 0) return;
    yield { code, at: p + 4, len };
    p += 4 + pad4(len);
  }
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** A classic pcap file (nanosecond timestamps), one link type. */
export function writePcap(linktype: number, frames: Pick<CapturedFrame, 'ts' | 'data' | 'origLen'>[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(PCAP_MAGIC_NS, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(linktype, 20);
  const parts: Buffer[] = [head];
  for (const f of frames) {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(Number(f.ts / 1_000_000_000n), 0);
    rec.writeUInt32LE(Number(f.ts % 1_000_000_000n), 4);
    rec.writeUInt32LE(f.data.length, 8);
    rec.writeUInt32LE(Math.max(f.origLen, f.data.length), 12);
    parts.push(rec, Buffer.from(f.data));
  }
  return Buffer.concat(parts);
}

export interface PcapngInterface {
  linktype: number;
  name: string;
  description?: string;
}

function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  b.writeUInt32LE(len, len - 4);
  return b;
}

function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

const END_OF_OPTIONS = Buffer.alloc(4);

/** A pcapng file with named interfaces (if_name shows as frame.interface_name) and per-packet comments. */
export function writePcapng(interfaces: PcapngInterface[], frames: (Pick<CapturedFrame, 'ts' | 'data' | 'origLen' | 'comment'> & { interfaceId: number })[]): Buffer {
  const shb = Buffer.alloc(16);
  shb.writeUInt32LE(0x1a2b3c4d, 0);
  shb.writeUInt16LE(1, 4);
  shb.writeUInt16LE(0, 6);
  shb.writeBigInt64LE(-1n, 8);
  const parts: Buffer[] = [block(PCAPNG_SHB, shb)];
  for (const i of interfaces) {
    const fixed = Buffer.alloc(8);
    fixed.writeUInt16LE(i.linktype, 0);
    fixed.writeUInt32LE(262144, 4);
    const opts = [option(2, Buffer.from(i.name)), ...(i.description ? [option(3, Buffer.from(i.description))] : []), option(9, Buffer.from([9])), END_OF_OPTIONS];
    parts.push(block(1, Buffer.concat([fixed, ...opts])));
  }
  for (const f of frames) {
    const fixed = Buffer.alloc(20);
    fixed.writeUInt32LE(f.interfaceId, 0);
    fixed.writeUInt32LE(Number(f.ts >> 32n), 4);
    fixed.writeUInt32LE(Number(f.ts & 0xffffffffn), 8);
    fixed.writeUInt32LE(f.data.length, 12);
    fixed.writeUInt32LE(Math.max(f.origLen, f.data.length), 16);
    const data = Buffer.alloc(pad4(f.data.length));
    Buffer.from(f.data).copy(data);
    const opts = f.comment ? [option(1, Buffer.from(f.comment)), END_OF_OPTIONS] : [];
    parts.push(block(6, Buffer.concat([fixed, data, ...opts])));
  }
  return Buffer.concat(parts);
}

// ---- decoding ----

export type Direction = 'in' | 'out' | 'other';

export interface Tcp {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Uint8Array;
}

export interface Udp {
  sport: number;
  dport: number;
  payload: Uint8Array;
}

export interface Ipv4 {
  src: string;
  dst: string;
  id: number;
  ttl: number;
  proto: number;
  totalLength: number;
  tcp?: Tcp;
  udp?: Udp;
  /** Present when the UDP payload is Geneve carrying an Ethernet frame with IPv4. */
  geneve?: { vni: number; inner?: Ipv4 };
}

export interface DecodedFrame {
  /** SLL/SLL2 packet type: 0 to us, 1 broadcast, 2 multicast, 3 to another host, 4 sent by us. */
  pktType?: number;
  /** SLL2 interface index (in the capturing netns). */
  ifIndex?: number;
  etherType?: number;
  ip?: Ipv4;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export function decodeFrame(linktype: number, data: Uint8Array): DecodedFrame {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  try {
    switch (linktype) {
      case LINKTYPE_LINUX_SLL2: {
        if (data.length < 20) return {};
        const etherType = dv.getUint16(0);
        const out: DecodedFrame = { etherType, ifIndex: dv.getUint32(4), pktType: data[10] };
        if (etherType === 0x0800) out.ip = decodeIpv4(data.subarray(20));
        return out;
      }
      case LINKTYPE_LINUX_SLL: {
        if (data.length < 16) return {};
        const etherType = dv.getUint16(14);
        const out: DecodedFrame = { etherType, pktType: dv.getUint16(0) };
        if (etherType === 0x0800) out.ip = decodeIpv4(data.subarray(16));
        return out;
      }
      case LINKTYPE_ETHERNET: {
        const e = decodeEthernet(data);
        return e ? { etherType: e.etherType, ip: e.ip } : {};
      }
      case LINKTYPE_RAW:
      case LINKTYPE_IPV4:
        return { etherType: 0x0800, ip: decodeIpv4(data) };
      default:
        return {};
    }
  } catch {
    return {};
  }
}

function decodeEthernet(data: Uint8Array): { etherType: number; ip?: Ipv4 } | undefined {
  if (data.length < 14) return undefined;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = 12;
  let etherType = dv.getUint16(off);
  while ((etherType === 0x8100 || etherType === 0x88a8) && data.length >= off + 6) {
    off += 4;
    etherType = dv.getUint16(off);
  }
  return { etherType, ip: etherType === 0x0800 ? decodeIpv4(data.subarray(off + 2)) : undefined };
}

const ipStr = (b: Uint8Array, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

export function decodeIpv4(b: Uint8Array): Ipv4 | undefined {
  if (b.length < 20 || b[0] >> 4 !== 4) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ihl = (b[0] & 0x0f) * 4;
  const totalLength = dv.getUint16(2);
  const ip: Ipv4 = { src: ipStr(b, 12), dst: ipStr(b, 16), id: dv.getUint16(4), ttl: b[8], proto: b[9], totalLength };
  const fragOffset = dv.getUint16(6) & 0x1fff;
  if (fragOffset !== 0) return ip;
  // The capture may hold Ethernet padding past the IP packet: trust totalLength.
  const l4 = b.subarray(ihl, Math.min(b.length, Math.max(totalLength, ihl)));
  const l4v = new DataView(l4.buffer, l4.byteOffset, l4.byteLength);
  if (ip.proto === 6 && l4.length >= 20) {
    const doff = (l4[12] >> 4) * 4;
    ip.tcp = {
      sport: l4v.getUint16(0), dport: l4v.getUint16(2), seq: l4v.getUint32(4), ack: l4v.getUint32(8),
      flags: l4[13], window: l4v.getUint16(14), payload: l4.subarray(Math.min(doff, l4.length)),
    };
  } else if (ip.proto === 17 && l4.length >= 8) {
    ip.udp = { sport: l4v.getUint16(0), dport: l4v.getUint16(2), payload: l4.subarray(8) };
    if (ip.udp.dport === GENEVE_UDP_PORT) ip.geneve = decodeGeneve(ip.udp.payload);
  }
  return ip;
}

export function decodeGeneve(p: Uint8Array): Ipv4['geneve'] {
  if (p.length < 8 || p[0] >> 6 !== 0) return undefined;
  const optLen = (p[0] & 0x3f) * 4;
  const proto = (p[2] << 8) | p[3];
  const vni = (p[4] << 16) | (p[5] << 8) | p[6];
  const payload = p.subarray(8 + optLen);
  if (proto === 0x6558) return { vni, inner: decodeEthernet(payload)?.ip };
  if (proto === 0x0800) return { vni, inner: decodeIpv4(payload) };
  return { vni };
}

export function directionOf(pktType: number | undefined): Direction {
  if (pktType === 4) return 'out';
  if (pktType === 0 || pktType === 1 || pktType === 2 || pktType === 3) return 'in';
  return 'other';
}

export function tcpFlagNames(flags: number): string {
  const names: string[] = [];
  if (flags & TCP_SYN) names.push('SYN');
  if (flags & TCP_FIN) names.push('FIN');
  if (flags & TCP_RST) names.push('RST');
  if (flags & TCP_PSH) names.push('PSH');
  if (flags & TCP_ACK) names.push('ACK');
  return names.join(',');
}

/** ALPN protocols of a TLS ClientHello at the start of `p`, or undefined if `p` is not one. */
export function tlsClientHelloAlpn(p: Uint8Array): string[] | undefined {
  if (p.length < 43 || p[0] !== 0x16 || p[1] !== 0x03 || p[5] !== 0x01) return undefined;
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  try {
    let o = 5 + 4 + 2 + 32;
    o += 1 + p[o];
    o += 2 + dv.getUint16(o);
    o += 1 + p[o];
    const extEnd = Math.min(p.length, o + 2 + dv.getUint16(o));
    o += 2;
    while (o + 4 <= extEnd) {
      const type = dv.getUint16(o);
      const len = dv.getUint16(o + 2);
      if (type === 16) {
        const out: string[] = [];
        let q = o + 6;
        while (q < o + 4 + len) {
          const l = p[q];
          out.push(new TextDecoder().decode(p.subarray(q + 1, q + 1 + l)));
          q += 1 + l;
        }
        return out;
      }
      o += 4 + len;
    }
    return [];
  } catch {
    return [];
  }
}
