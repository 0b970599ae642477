// istiod's part at `lab up`, off the CLI's main thread: the lab CA and every proxy's
// certificates are issued in a worker thread while the main thread waits for the kernel steps
// (namespaces, links, rules), which need its CPU only to start commands. The X.509 library
// costs ~130 ms to load and ~10 ms per identity, 1.4 s at 20 nodes x 10 pods: that much less
// between `lab up` and a lab that answers. Nothing here needs the kernel steps, and the
// processes that read the certificates start only once the files step has awaited this.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { LabBuild } from '../plan/lab-build.js';
import { issueCertificates } from './certificates.js';

type CertWork = Pick<LabBuild, 'ca' | 'certificates'>;

/** Starts issuing; the promise settles when every certificate is written (or with the first error). */
export function issueCertificatesInWorker(build: LabBuild): { done: Promise<void>; stop: () => Promise<void> } {
  if (!build.ca || !build.certificates.length) {
    return { done: issueCertificates(build), stop: async () => undefined };
  }
  const work: CertWork = { ca: build.ca, certificates: build.certificates };
  const worker = new Worker(new URL(import.meta.url), { workerData: work });
  // A failed or interrupted `lab up` must not wait for it: whatever it wrote is under the
  // lab's state directory, which `lab down` removes.
  worker.unref();
  const done = new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { error?: string }) => (m.error ? reject(new Error(m.error)) : resolve()));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`certificate worker exited (code ${code}) before it finished`)));
  });
  done.catch(() => undefined); // awaited by the files step; a failure before that step must not be unhandled
  return { done, stop: async () => { await worker.terminate(); } };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  issueCertificates(workerData as LabBuild).then(
    () => port.postMessage({}),
    (e: Error) => port.postMessage({ error: e.message }),
  );
}
