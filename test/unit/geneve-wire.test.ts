// Geneve framing against hand-checked bytes (test/golden/geneve/) and the malformed
// packets the decapsulating side must refuse.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeGeneve, decodeGeneve, writeGeneveHeader, parseTapSpec, GENEVE_HLEN } from '../../src/ambient/geneve-wire.js';

const golden = (name: string): Buffer => {
  const text = readFileSync(fileURLToPath(new URL(`../golden/geneve/${name}`, import.meta.url)), 'utf8');
  return Buffer.from(text.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
};

const packet = golden('udp-payload-vni1001-arp.hex');
const arpFrame = packet.subarray(GENEVE_HLEN);

t.test('encodeGeneve produces the hand-checked bytes', async (t) => {
  t.equal(packet.length, 8 + 42);
  t.equal(encodeGeneve(1001, arpFrame).toString('hex'), packet.toString('hex'));
  t.equal(encodeGeneve(1000, arpFrame).subarray(0, 8).toString('hex'), '00006558' + '0003e8' + '00', 'VNI 1000 (istioin)');
  t.equal(encodeGeneve(0xabcdef, arpFrame).subarray(4, 8).toString('hex'), 'abcdef00', 'VNI is 24-bit big-endian');
  t.throws(() => encodeGeneve(1 << 24, arpFrame), RangeError);
  t.throws(() => encodeGeneve(-1, arpFrame), RangeError);
});

t.test('writeGeneveHeader writes in place at an offset', async (t) => {
  const b = Buffer.alloc(12, 0xaa);
  writeGeneveHeader(b, 1001, 2);
  t.equal(b.toString('hex'), 'aaaa' + '000065580003e900' + 'aaaa');
});

t.test('decodeGeneve returns VNI and the inner frame without copying', async (t) => {
  const d = decodeGeneve(packet);
  if (!d.ok) throw t.fail('decode failed');
  t.equal(d.vni, 1001);
  t.equal(d.oam, false);
  t.equal(d.frame.toString('hex'), arpFrame.toString('hex'));
  t.equal(d.frame.buffer, packet.buffer, 'frame is a view into the packet');
  // Only the first `len` bytes are the datagram; the rest of a reused buffer is stale.
  const big = Buffer.concat([packet, Buffer.alloc(100, 0xee)]);
  const d2 = decodeGeneve(big, packet.length);
  t.equal(d2.ok && d2.frame.length, arpFrame.length);
});

t.test('decodeGeneve skips options and refuses what it cannot deliver', async (t) => {
  const withOpts = Buffer.concat([Buffer.from('02006558' + '0003e900', 'hex'), Buffer.alloc(8, 0x11), arpFrame]);
  const d = decodeGeneve(withOpts);
  t.match(d, { ok: true, vni: 1001, optionsLength: 8, frameOffset: 16 });
  t.equal(d.ok && d.frame.toString('hex'), arpFrame.toString('hex'));

  const mutate = (i: number, v: number) => {
    const b = Buffer.from(packet);
    b[i] = v;
    return b;
  };
  t.same(decodeGeneve(mutate(0, 0x40)), { ok: false, reason: 'version' });
  t.same(decodeGeneve(mutate(1, 0x40)), { ok: false, reason: 'critical-options' });
  t.same(decodeGeneve(mutate(3, 0x00)), { ok: false, reason: 'protocol' }, 'IPv4 (0x6500) is not TEB');
  t.match(decodeGeneve(mutate(1, 0x80)), { ok: true, oam: true });
  t.same(decodeGeneve(packet.subarray(0, 7)), { ok: false, reason: 'short' });
  t.same(decodeGeneve(packet.subarray(0, 8 + 13)), { ok: false, reason: 'short' }, 'less than an Ethernet header');
  t.same(decodeGeneve(mutate(0, 0x3f)), { ok: false, reason: 'short' }, 'options longer than the packet');
});

t.test('parseTapSpec', async (t) => {
  t.same(parseTapSpec('istioin:1000'), { name: 'istioin', vni: 1000 });
  t.same(parseTapSpec('pistioout:1001'), { name: 'pistioout', vni: 1001 });
  t.throws(() => parseTapSpec('istioin'), /expected <ifname>:<vni>/);
  t.throws(() => parseTapSpec('a-name-longer-than-15:1'), /expected/);
  t.throws(() => parseTapSpec('x:16777216'), /VNI must be/);
});
