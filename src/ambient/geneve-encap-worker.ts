// Worker thread: Ethernet frames the kernel sends out of one TAP, wrapped in Geneve and sent
// over UDP to the remote end. One thread per TAP, blocking-style loop on koffi syscalls:
// under load every read() returns a frame; only when the TAP is idle do we poll(), which is
// also where the stop flag is checked.
import { parentPort, workerData } from 'node:worker_threads';
import { sysRead, sysSendTo, pollFd, sockaddrIn, POLLIN, EAGAIN, EINTR } from '../host/sys.js';
import { GENEVE_HLEN, writeGeneveHeader } from './geneve-wire.js';
import { ENCAP_COUNTERS, counterIndex } from './geneve-stats.js';

export interface EncapWorkerData {
  name: string;
  vni: number;
  tapFd: number;
  udpFd: number;
  remote: string;
  port: number;
  /** Int32 [0] = stop flag, set by the main thread. */
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
}

const POLL_MS = 100;
const MAX_FRAME = 65535;

function main(d: EncapWorkerData): void {
  const stop = new Int32Array(d.control);
  const n = new Float64Array(d.counters);
  const C = counterIndex(ENCAP_COUNTERS);
  const dest = sockaddrIn(d.remote, d.port);
  // The header is constant per TAP: write it once and read every frame right behind it.
  const pkt = Buffer.alloc(GENEVE_HLEN + MAX_FRAME);
  writeGeneveHeader(pkt, d.vni);
  const frame = pkt.subarray(GENEVE_HLEN);
  const pollScratch = Buffer.alloc(8);
  let lastError = 0;

  while (Atomics.load(stop, 0) === 0) {
    const len = sysRead(d.tapFd, frame, MAX_FRAME);
    if (len > 0) {
      const sent = sysSendTo(d.udpFd, pkt, GENEVE_HLEN + len, dest);
      if (sent < 0) {
        n[C.sendErrors]++;
        // e.g. ENETUNREACH while the underlay is not routed yet: report each new errno once.
        if (sent !== lastError) parentPort!.postMessage({ type: 'error', op: 'sendto', errno: -sent });
        lastError = sent;
      } else {
        n[C.frames]++;
        n[C.bytes] += len;
      }
    } else if (len === -EAGAIN || len === -EINTR || len === 0) {
      pollFd(d.tapFd, POLLIN, POLL_MS, pollScratch);
    } else {
      n[C.readErrors]++;
      parentPort!.postMessage({ type: 'error', op: 'read', errno: -len });
      pollFd(d.tapFd, POLLIN, POLL_MS, pollScratch);
    }
  }
}

main(workerData as EncapWorkerData);
// koffi keeps the worker's event loop referenced: leave explicitly (ends this thread only).
process.exit(0);
