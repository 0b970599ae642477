// Geneve (RFC 8926) framing, as Linux's geneve driver puts it on the wire for the
// istioin/istioout tunnels: UDP to port 6081, an 8-byte header without options,
// protocol 0x6558 (Transparent Ethernet Bridging), then the inner Ethernet frame.
//
//   0                   1                   2                   3
//   |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
//   |        Virtual Network Identifier (VNI)       |    Reserved   |

export const GENEVE_PORT = 6081;
export const GENEVE_HLEN = 8;
export const ETH_P_TEB = 0x6558;
/** Ethernet header: the smallest inner payload worth delivering. */
export const ETH_HLEN = 14;
export const MAX_VNI = 0xffffff;

/** Writes the option-less header for `vni` at `buf[off..off+8]`. */
export function writeGeneveHeader(buf: Uint8Array, vni: number, off = 0): void {
  if (!Number.isInteger(vni) || vni < 0 || vni > MAX_VNI) throw new RangeError(`VNI out of range: ${vni}`);
  buf[off] = 0; // version 0, no options
  buf[off + 1] = 0; // O=0, C=0
  buf[off + 2] = ETH_P_TEB >> 8;
  buf[off + 3] = ETH_P_TEB & 0xff;
  buf[off + 4] = (vni >> 16) & 0xff;
  buf[off + 5] = (vni >> 8) & 0xff;
  buf[off + 6] = vni & 0xff;
  buf[off + 7] = 0;
}

/** The UDP payload carrying Ethernet `frame` on `vni`. */
export function encodeGeneve(vni: number, frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(GENEVE_HLEN + frame.length);
  writeGeneveHeader(out, vni);
  out.set(frame, GENEVE_HLEN);
  return out;
}

export type GeneveDecoded =
  | { ok: true; vni: number; oam: boolean; optionsLength: number; frameOffset: number; frame: Buffer }
  | { ok: false; reason: 'short' | 'version' | 'critical-options' | 'protocol' };

/**
 * Parses a UDP payload. `frame` is a view into `buf` (no copy). Options are skipped, but a
 * packet flagged with critical options is refused: this endpoint understands none (RFC 8926 §3.4).
 */
export function decodeGeneve(buf: Uint8Array, len = buf.length): GeneveDecoded {
  if (len < GENEVE_HLEN) return { ok: false, reason: 'short' };
  const version = buf[0] >> 6;
  if (version !== 0) return { ok: false, reason: 'version' };
  const optionsLength = (buf[0] & 0x3f) * 4;
  if (buf[1] & 0x40) return { ok: false, reason: 'critical-options' };
  if (((buf[2] << 8) | buf[3]) !== ETH_P_TEB) return { ok: false, reason: 'protocol' };
  const frameOffset = GENEVE_HLEN + optionsLength;
  if (len < frameOffset + ETH_HLEN) return { ok: false, reason: 'short' };
  const vni = (buf[4] << 16) | (buf[5] << 8) | buf[6];
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return { ok: true, vni, oam: (buf[1] & 0x80) !== 0, optionsLength, frameOffset, frame: b.subarray(frameOffset, len) };
}

/** `--tap istioin:1000` → { name, vni }. */
export function parseTapSpec(spec: string): { name: string; vni: number } {
  const m = /^([^:\s/]{1,15}):(\d+)$/.exec(spec);
  if (!m) throw new Error(`bad --tap "${spec}": expected <ifname>:<vni>, e.g. istioin:1000`);
  const vni = Number(m[2]);
  if (vni > MAX_VNI) throw new Error(`bad --tap "${spec}": VNI must be 0..${MAX_VNI}`);
  return { name: m[1], vni };
}
