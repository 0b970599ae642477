// A TCP echo server for L4 tests through the mesh. In sink mode it reads and discards, then
// answers the byte count once the client half-closes: the count is what arrived at this pod,
// so a throughput test can check no byte was lost on the way.
import { listen } from './app-cli.js';
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { plainAddress } from './app-cli.js';
import type { RunningApp } from './httpbin-server.js';

export interface EchoOptions {
  port: number;
  host?: string;
  /** Discard input and reply `<bytes>\n` on half-close instead of echoing. */
  sink?: boolean;
  log?: Logger;
}

export async function startEcho(opts: EchoOptions): Promise<RunningApp> {
  const sockets = new Set<Socket>();
  // Half-open: after the client's FIN we still owe it the echo tail or the sink count.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    serve(sock, opts.sink === true, opts.log);
  });
  await listen(server, opts.port, opts.host ?? '0.0.0.0');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}


function serve(sock: Socket, sink: boolean, log?: Logger): void {
  const started = process.hrtime.bigint();
  const remote = plainAddress(sock.remoteAddress);
  const remotePort = sock.remotePort;
  let received = 0;
  sock.on('data', (d: Buffer) => {
    received += d.length;
  });
  sock.on('error', () => {
    /* a reset peer shows up in the close log line; nothing to do */
  });
  sock.on('close', (hadError) => {
    log?.info(
      {
        mode: sink ? 'sink' : 'echo',
        remote,
        remotePort,
        bytesIn: received,
        bytesOut: sock.bytesWritten,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
        ...(hadError ? { error: true } : {}),
      },
      'connection',
    );
  });
  if (sink) {
    sock.on('end', () => sock.end(`${received}\n`));
    sock.resume();
  } else {
    // pipe() pauses reading while the peer is slow to read its echo, and ends our side
    // after the client's FIN once everything was written back.
    sock.pipe(sock);
  }
}
