// A (re)started ztunnel listens on its capture ports before it loads the rest of its code
// (issue 13: a killed proxy serves again within 1 s). While nothing listens on 15001/15006/
// 15008, TPROXY finds no socket and the SYN is dropped: the client's kernel sends it again
// only after 1 s (then 3 s). A listening socket lets the kernel complete the handshake and
// queue the connection, which is served as soon as the proxy is loaded (some 0.1 s of CPU,
// seconds on a loaded machine). Only the config file and the socket calls are needed here.
import { closeSync } from 'node:fs';
import { tcpListenFd } from '../host/sys.js';
import { portsOf, type ZtunnelConfig } from './config.js';

export type CapturePort = 'outbound' | 'inboundPlaintext' | 'inbound';
export type CaptureFds = Record<CapturePort, number>;

const CAPTURE: CapturePort[] = ['outbound', 'inboundPlaintext', 'inbound'];

/**
 * The three capture listeners, bound as startZtunnel binds them (IP_TRANSPARENT,
 * SO_REUSEPORT). All or none: on any failure those opened are closed and the error is
 * thrown, for startZtunnel to bind (and fail) in the ordinary way.
 */
export function listenCapture(cfg: ZtunnelConfig): CaptureFds {
  const want = portsOf(cfg);
  const host = cfg.listen?.host ?? '0.0.0.0';
  const fds: Partial<CaptureFds> = {};
  try {
    for (const p of CAPTURE) fds[p] = tcpListenFd({ host, port: want[p], transparent: true, reusePort: true });
    return fds as CaptureFds;
  } catch (e) {
    for (const fd of Object.values(fds)) closeSync(fd);
    throw e;
  }
}
