import t from 'tap';
import {
  decodeFrame, readCaptureFile, writePcap, writePcapng, tlsClientHelloAlpn, tcpFlagNames, directionOf,
  LINKTYPE_LINUX_SLL2, LINKTYPE_ETHERNET,
} from '../../src/trace/pcap.js';
import { ether, geneve, ipv4, sll2, tcp, udp, OUT, IN, SYN, ACK } from './trace-frames.js';

t.test('SLL2 + IPv4 + TCP: interface index, direction, addresses, TCP state', async (t) => {
  const f = sll2(5, OUT, ipv4('10.244.0.4', '10.96.0.11', 0x7cbe, 6, tcp(43122, 8000, 1000, 0, SYN)));
  const d = decodeFrame(LINKTYPE_LINUX_SLL2, f);
  t.equal(d.ifIndex, 5);
  t.equal(directionOf(d.pktType), 'out');
  t.equal(d.ip?.src, '10.244.0.4');
  t.equal(d.ip?.dst, '10.96.0.11');
  t.equal(d.ip?.id, 0x7cbe);
  t.same({ sport: d.ip?.tcp?.sport, dport: d.ip?.tcp?.dport, seq: d.ip?.tcp?.seq, flags: tcpFlagNames(d.ip!.tcp!.flags) }, { sport: 43122, dport: 8000, seq: 1000, flags: 'SYN' });
  t.equal(d.ip?.tcp?.payload.length, 0);
});

t.test('Geneve on UDP 6081: VNI and the inner packet', async (t) => {
  const inner = ipv4('10.244.0.4', '10.96.0.11', 0x1234, 6, tcp(43122, 8000, 7, 0, SYN));
  const outer = ipv4('10.244.0.1', '10.244.0.2', 99, 17, udp(40000, 6081, geneve(1001, ether(inner))));
  const d = decodeFrame(LINKTYPE_LINUX_SLL2, sll2(3, OUT, outer));
  t.equal(d.ip?.udp?.dport, 6081);
  t.equal(d.ip?.geneve?.vni, 1001);
  t.equal(d.ip?.geneve?.inner?.dst, '10.96.0.11');
  t.equal(d.ip?.geneve?.inner?.id, 0x1234);
  t.equal(d.ip?.geneve?.inner?.tcp?.dport, 8000);
});

t.test('Ethernet padding past the IP length is not payload', async (t) => {
  const pkt = ether([...ipv4('1.1.1.1', '2.2.2.2', 1, 6, tcp(1, 2, 3, 4, ACK)), 0, 0, 0, 0, 0, 0]);
  const d = decodeFrame(LINKTYPE_ETHERNET, new Uint8Array(pkt));
  t.equal(d.ip?.tcp?.payload.length, 0);
});

t.test('pcap: written with nanosecond stamps, read back the same', async (t) => {
  const a = sll2(2, IN, ipv4('10.0.0.1', '10.0.0.2', 1, 6, tcp(1, 80, 5, 0, SYN)));
  const b = sll2(2, OUT, ipv4('10.0.0.2', '10.0.0.1', 2, 6, tcp(80, 1, 9, 6, SYN | ACK)));
  const buf = writePcap(LINKTYPE_LINUX_SLL2, [{ ts: 1_700_000_000_123_456_789n, data: a, origLen: a.length }, { ts: 1_700_000_000_123_456_790n, data: b, origLen: b.length }]);
  t.equal(buf.readUInt32LE(0), 0xa1b23c4d, 'nanosecond pcap magic');
  const f = readCaptureFile(new Uint8Array(buf));
  t.equal(f.format, 'pcap');
  t.equal(f.frames.length, 2);
  t.equal(f.frames[0].ts, 1_700_000_000_123_456_789n);
  t.equal(f.frames[1].ts - f.frames[0].ts, 1n);
  t.same([...f.frames[1].data], [...b]);
});

t.test('pcap: a truncated last record (file still being written) is dropped, not an error', async (t) => {
  const a = sll2(2, IN, ipv4('10.0.0.1', '10.0.0.2', 1, 6, tcp(1, 80, 5, 0, SYN)));
  const buf = writePcap(LINKTYPE_LINUX_SLL2, [{ ts: 1n, data: a, origLen: a.length }, { ts: 2n, data: a, origLen: a.length }]);
  t.equal(readCaptureFile(new Uint8Array(buf.subarray(0, buf.length - 5))).frames.length, 1);
});

t.test('pcap: microsecond big-endian files (other writers) are read too', async (t) => {
  const data = new Uint8Array(ipv4('10.0.0.1', '10.0.0.2', 1, 6, tcp(1, 80, 5, 0, SYN)));
  const head = Buffer.alloc(24);
  head.writeUInt32BE(0xa1b2c3d4, 0);
  head.writeUInt16BE(2, 4); head.writeUInt16BE(4, 6);
  head.writeUInt32BE(65535, 16); head.writeUInt32BE(101, 20);
  const rec = Buffer.alloc(16);
  rec.writeUInt32BE(10, 0); rec.writeUInt32BE(250, 4); rec.writeUInt32BE(data.length, 8); rec.writeUInt32BE(data.length, 12);
  const f = readCaptureFile(new Uint8Array(Buffer.concat([head, rec, Buffer.from(data)])));
  t.equal(f.frames[0].ts, 10_000_250_000n);
  t.equal(decodeFrame(f.frames[0].linktype, f.frames[0].data).ip?.dst, '10.0.0.2');
});

t.test('pcapng: interface names, per-packet comments and timestamps survive a round trip', async (t) => {
  const a = sll2(2, OUT, ipv4('10.0.0.1', '10.0.0.2', 1, 6, tcp(1, 80, 5, 0, SYN)));
  const buf = writePcapng(
    [{ linktype: LINKTYPE_LINUX_SLL2, name: 'pod:sleep:eth0' }, { linktype: LINKTYPE_LINUX_SLL2, name: 'node:node-a:veth-sleep', description: 'al-x-node-node-a veth1234' }],
    [{ ts: 5_000_000_001n, data: a, origLen: a.length, interfaceId: 1, comment: 'hop 2: node node-a veth-sleep' }, { ts: 5_000_000_000n, data: a, origLen: a.length, interfaceId: 0 }],
  );
  const f = readCaptureFile(new Uint8Array(buf));
  t.equal(f.format, 'pcapng');
  t.same(f.interfaceNames, ['pod:sleep:eth0', 'node:node-a:veth-sleep']);
  t.equal(f.frames[0].interfaceId, 1);
  t.equal(f.frames[0].comment, 'hop 2: node node-a veth-sleep');
  t.equal(f.frames[0].ts, 5_000_000_001n);
  t.equal(f.frames[1].comment, undefined);
  t.same([...f.frames[1].data], [...a]);
});

t.test('TLS ClientHello: ALPN list is read, anything else is not a ClientHello', async (t) => {
  // record(handshake) > ClientHello: version, random, empty session id, one suite, null compression, ALPN ext ["h2"]
  const alpnExt = [0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, 0x68, 0x32];
  const body = [0x03, 0x03, ...new Array(32).fill(7), 0, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00, 0x00, alpnExt.length, ...alpnExt];
  const hs = [0x01, 0, (body.length >> 8) & 0xff, body.length & 0xff, ...body];
  const rec = new Uint8Array([0x16, 0x03, 0x01, (hs.length >> 8) & 0xff, hs.length & 0xff, ...hs]);
  t.same(tlsClientHelloAlpn(rec), ['h2']);
  t.equal(tlsClientHelloAlpn(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n-------------------------')), undefined);
});
