// HTTP/2 tuning shared by both HBONE ends. Rust ztunnel uses 4 MiB windows; measured here
// (Node's nghttp2 on loopback) 16 MiB windows gave 3.7-3.9 Gbit/s vs 2.1 with Node's
// defaults (64 KiB window). SETTINGS_MAX_FRAME_SIZE is 1 MiB as ztunnel advertises it, but it
// only lets the peer send larger frames: Node's nghttp2 has no read-length callback, so the
// DATA frames Node sends are at most 16 KiB whatever the peer allows. A 16 KiB frame plus its
// 9-byte header straddles two 16 KiB TLS records, so the receiving end hands its stream two
// pieces per frame (README.md, Benchmarks: where the CPU goes).
import type http2 from 'node:http2';

export const HBONE_WINDOW = 16 * 1024 * 1024;
export const HBONE_MAX_FRAME = 1024 * 1024;

export const hboneSettings: http2.Settings = {
  initialWindowSize: HBONE_WINDOW,
  maxFrameSize: HBONE_MAX_FRAME,
  enablePush: false,
};

/**
 * Session options: nghttp2 counts buffered window data against maxSessionMemory (MB),
 * whose 10 MB default is below one full 16 MiB window.
 */
export const hboneSessionOptions = { settings: hboneSettings, maxSessionMemory: 256 } as const;

/** The connection-level window is not a SETTINGS value; raise it once per session. */
export function widenConnectionWindow(session: http2.Http2Session): void {
  const apply = (): void => {
    try {
      session.setLocalWindowSize(HBONE_WINDOW);
    } catch {
      // session already destroyed
    }
  };
  if (session.connecting) session.once('connect', apply);
  else apply();
}
