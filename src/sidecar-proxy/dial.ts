// Opening the upstream a transport decision names (transport.ts), as this sidecar: HBONE over
// the proxy core's pool with the pod's identity, Istio mTLS, or plain TCP. The proxy runs as
// uid 1337, so its own sockets are not captured again and need no spoofing.
import type { Duplex } from 'node:stream';
import { connectIstioMtls } from './istio-mtls.js';
import type { EndpointTransport } from './transport.js';
import type { SidecarContext } from './context.js';

export async function dialTransport(s: SidecarContext, t: EndpointTransport): Promise<Duplex> {
  const { z } = s;
  switch (t.kind) {
    case 'hbone': {
      // Istio 1.19+ sidecars send no baggage on CONNECT (waypoint-and-sidecar.md §5).
      const { stream } = await z.pool.connect({ source: s.identity, expected: t.expected, address: t.hboneAddr }, t.authority, {});
      return stream;
    }
    case 'istio-mtls':
      return connectIstioMtls(z.tls, (await z.dialer.connected(t.target)).socket, t.target, s.identity, t.expected);
    case 'plaintext':
    case 'passthrough':
      return (await z.dialer.connected(t.target)).socket;
  }
}
