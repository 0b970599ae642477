// Upstream TCP connections with the client's address as source (ztunnel's freebind_connect
// under ENABLE_ORIG_SRC): the pod behind ztunnel sees the real client IP, and the node's
// 0x210/0x040 marks bring the replies back to this netns. Best effort by default: if the
// kernel refuses the spoofed bind, connect from our own address and say so in the log.
import net from 'node:net';
import type { Logger } from 'pino';
import { connectSpoofed } from '../host/sys.js';
import type { Address } from '../mesh/hbone-server.js';

export type OrigSrcMode = 'best-effort' | 'required' | 'off';

export const origSrcMode = (v: boolean | null | undefined): OrigSrcMode => (v === true ? 'required' : v === false ? 'off' : 'best-effort');

export interface Dialer {
  /** Starts a connection (sync, so the HBONE pool can use it); spoofs `srcIp` when set and enabled. */
  connect(dst: Address, srcIp?: string): { socket: net.Socket; spoofed: boolean };
  /** Resolves when connected; retries unspoofed when a best-effort spoofed bind is refused. */
  connected(dst: Address, srcIp?: string): Promise<{ socket: net.Socket; spoofed: boolean }>;
  readonly mode: OrigSrcMode;
}

// Errors that mean "this source address cannot be used here", as opposed to the target's answer.
const BIND_ERRORS = new Set(['EADDRNOTAVAIL', 'EPERM', 'EACCES', 'EINVAL', 'EADDRINUSE']);

const plain = (dst: Address): net.Socket => net.connect({ host: dst.ip, port: dst.port, allowHalfOpen: true });

export function createDialer(mode: OrigSrcMode, log: Logger): Dialer {
  let warned = false;
  const fallback = (srcIp: string, e: Error): void => {
    // Once at warn level, then at debug: a host without the capability would flood the log.
    const msg = `original source ${srcIp} unavailable, connecting from our own address`;
    if (!warned) log.warn({ err: e.message, srcIp }, msg);
    else log.debug({ err: e.message, srcIp }, msg);
    warned = true;
  };

  function connect(dst: Address, srcIp?: string): { socket: net.Socket; spoofed: boolean } {
    if (!srcIp || mode === 'off') return { socket: plain(dst), spoofed: false };
    try {
      const socket = connectSpoofed({ srcIp, dstIp: dst.ip, dstPort: dst.port });
      (socket as net.Socket & { allowHalfOpen: boolean }).allowHalfOpen = true;
      return { socket, spoofed: true };
    } catch (e) {
      if (mode === 'required') throw e;
      fallback(srcIp, e as Error);
      return { socket: plain(dst), spoofed: false };
    }
  }

  function waitConnected(socket: net.Socket): Promise<void> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error): void => {
        socket.off('connect', onOk);
        reject(e);
      };
      const onOk = (): void => {
        socket.off('error', onErr);
        resolve();
      };
      socket.once('error', onErr);
      socket.once('connect', onOk);
    });
  }

  async function connected(dst: Address, srcIp?: string): Promise<{ socket: net.Socket; spoofed: boolean }> {
    const first = connect(dst, srcIp);
    try {
      await waitConnected(first.socket);
      return first;
    } catch (e) {
      first.socket.destroy();
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (!first.spoofed || mode === 'required' || !BIND_ERRORS.has(code)) throw e;
      fallback(srcIp!, e as Error);
      const second = plain(dst);
      try {
        await waitConnected(second);
      } catch (e2) {
        second.destroy();
        throw e2;
      }
      return { socket: second, spoofed: false };
    }
  }

  return { connect, connected, mode };
}
