// Worker thread: Geneve packets arriving on the daemon's UDP socket, checked (sender, header,
// VNI) and their inner Ethernet frame written to the TAP of that VNI. One thread serves every
// TAP of the daemon; writes to a TAP never block, so it only ever waits on the socket.
import { parentPort, workerData } from 'node:worker_threads';
import { sysRecvFrom, sysWrite, pollFd, sockaddrIn, POLLIN, EAGAIN, EINTR, MSG_DONTWAIT } from '../host/sys.js';
import { decodeGeneve } from './geneve-wire.js';
import { DECAP_COUNTERS, counterIndex } from './geneve-stats.js';

export interface DecapWorkerData {
  udpFd: number;
  /** Only packets from this address are accepted (like a kernel geneve link with `remote`). */
  remote: string;
  taps: Array<{ name: string; vni: number; fd: number }>;
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
}

const POLL_MS = 100;

function main(d: DecapWorkerData): void {
  const stop = new Int32Array(d.control);
  const n = new Float64Array(d.counters);
  const C = counterIndex(DECAP_COUNTERS);
  const tapByVni = new Map(d.taps.map((t) => [t.vni, t.fd]));
  const remote = sockaddrIn(d.remote, 0).readUInt32BE(4);
  const buf = Buffer.alloc(65536);
  const from = Buffer.alloc(16);
  const fromLen = Buffer.alloc(4);
  const pollScratch = Buffer.alloc(8);
  const reported = new Set<string>();
  const reportOnce = (op: string, errno: number) => {
    if (reported.has(`${op}/${errno}`)) return;
    reported.add(`${op}/${errno}`);
    parentPort!.postMessage({ type: 'error', op, errno });
  };

  while (Atomics.load(stop, 0) === 0) {
    const len = sysRecvFrom(d.udpFd, buf, buf.length, from, fromLen, MSG_DONTWAIT);
    if (len < 0) {
      if (len !== -EAGAIN && len !== -EINTR) {
        n[C.recvErrors]++;
        reportOnce('recvfrom', -len);
      }
      pollFd(d.udpFd, POLLIN, POLL_MS, pollScratch);
      continue;
    }
    if (from.readUInt32BE(4) !== remote) {
      n[C.wrongRemote]++;
      continue;
    }
    const g = decodeGeneve(buf, len);
    if (!g.ok) {
      n[C.malformed]++;
      continue;
    }
    const tapFd = tapByVni.get(g.vni);
    if (tapFd === undefined) {
      n[C.unknownVni]++;
      continue;
    }
    const w = sysWrite(tapFd, g.frame, g.frame.length);
    if (w < 0) {
      // EIO while the TAP is down, for instance: the kernel drops such frames too.
      n[C.writeErrors]++;
      reportOnce('write', -w);
    } else {
      n[C.packets]++;
      n[C.bytes] += g.frame.length;
    }
  }
}

main(workerData as DecapWorkerData);
// koffi keeps the worker's event loop referenced: leave explicitly (ends this thread only).
process.exit(0);
