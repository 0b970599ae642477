// Listening helpers every proxy uses: a TCP listener on host:port, or on a kernel fd made
// with options Node cannot set (host/sys.ts); both resolve with the port actually bound.
import type net from 'node:net';

export function listenTcp(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Closes servers, cutting their open HTTP connections (admin, stats) rather than waiting for them. */
export function closeServers(servers: net.Server[]): Promise<void> {
  return Promise.all(servers.map((s) => new Promise<void>((r) => {
    s.close(() => r());
    (s as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  }))).then(() => undefined);
}
