// TLS key logging in the SSLKEYLOGFILE format (what Wireshark/tshark read to decrypt HBONE).
// Written synchronously: a handful of lines per handshake, and lines must not be lost if the
// proxy is killed right after a capture.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TLSSocket } from 'node:tls';

export interface KeyLog {
  file: string;
  attach(sock: TLSSocket): void;
  close(): void;
}

export function openKeyLog(file: string): KeyLog {
  mkdirSync(dirname(file), { recursive: true });
  let fd: number | undefined = openSync(file, 'a', 0o600);
  return {
    file,
    attach(sock) {
      sock.on('keylog', (line: Buffer) => {
        if (fd !== undefined) writeSync(fd, line);
      });
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** The key log a proxy should use: config first, then the SSLKEYLOGFILE convention. */
export function keyLogFromEnv(configured?: string, env: NodeJS.ProcessEnv = process.env): KeyLog | undefined {
  const file = configured || env.SSLKEYLOGFILE;
  return file ? openKeyLog(file) : undefined;
}
