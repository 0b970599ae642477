// Istio mTLS between sidecars without HBONE ("ISTIO_MUTUAL"): TLS straight to the peer's app
// port, which its iptables REDIRECT to its Envoy's 15006. The client offers the ALPN values
// Istio's outbound cluster sets for a mesh peer (istio-peer-exchange, istio); the server tells
// mTLS from plaintext on the same port by the first byte (a TLS handshake record is 0x16),
// as Envoy's tls_inspector does. Identities are the SPIFFE URI SANs of the lab CA's certs.
import net from 'node:net';
import tls from 'node:tls';
import { createHash, X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Address } from '../mesh/hbone-server.js';
import { formatSpiffe, type SpiffeId } from '../mesh/identity.js';
import { expectIdentity, secureContextFor, verifyPeer, type MeshTls } from '../mesh/tls.js';
import { plainDuplex } from '../mesh/duplex-adapter.js';

export const ISTIO_ALPN = ['istio-peer-exchange', 'istio'];

/** The first byte of a TLS record carrying a handshake (the ClientHello). */
export const TLS_HANDSHAKE_RECORD = 0x16;

export const looksLikeTls = (first: Buffer): boolean => first.length > 0 && first[0] === TLS_HANDSHAKE_RECORD;

/**
 * Waits for the connection's first bytes without consuming them: they are put back, so the
 * socket reads as if untouched. null when the peer closed before sending anything.
 */
export function peekFirstChunk(sock: net.Socket, timeoutMs = 10_000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const done = (b: Buffer | null): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      resolve(b);
    };
    const onData = (b: Buffer): void => {
      sock.pause();
      sock.unshift(b);
      done(b);
    };
    const onEnd = (): void => done(null);
    // A client that connects and waits for the server to speak first (a server-first protocol
    // such as MySQL or SMTP) is plaintext; Envoy's tls_inspector gives up the same way.
    const timer = setTimeout(() => done(Buffer.alloc(0)), timeoutMs);
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('close', onEnd);
    sock.resume();
  });
}

/** Istio mTLS to a peer's app port over `socket` (connecting or connected), as `source`; the peer must prove `expected`. */
export async function connectIstioMtls(mesh: MeshTls, socket: net.Socket, target: Address, source: SpiffeId, expected: SpiffeId, timeoutMs = 10_000): Promise<tls.TLSSocket> {
  const secureContext = await secureContextFor(mesh, source);
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      socket, secureContext, ALPNProtocols: ISTIO_ALPN,
      rejectUnauthorized: true, checkServerIdentity: expectIdentity(expected),
    });
    mesh.keyLog?.attach(sock);
    const timer = setTimeout(() => sock.destroy(new Error(`Istio mTLS handshake with ${target.ip}:${target.port} timed out`)), timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    });
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      sock.on('error', () => undefined);
      resolve(sock);
    });
  });
}

export interface AcceptedMtls {
  stream: tls.TLSSocket;
  peer: SpiffeId;
  /** sha256 of the peer certificate (DER), hex: XFCC's Hash. */
  certHash: string;
  certSubject: string;
}

/**
 * Terminates Istio mTLS on an accepted socket whose first chunk was a ClientHello (put back
 * by peekFirstChunk), presenting `local`. Rejects (the caller resets the connection) when the
 * peer has no certificate from the lab CA or speaks neither of Istio's ALPN values.
 */
export async function acceptIstioMtls(mesh: MeshTls, raw: net.Socket, local: SpiffeId, timeoutMs = 10_000): Promise<AcceptedMtls> {
  const secureContext = await secureContextFor(mesh, local);
  // Through a JS stream: the bytes peekFirstChunk put back live in the socket's JS buffer,
  // which a TLSSocket on the native handle would skip.
  const sock = new tls.TLSSocket(plainDuplex(raw), {
    isServer: true, secureContext, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ISTIO_ALPN,
  });
  mesh.keyLog?.attach(sock);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => sock.destroy(new Error('TLS handshake timeout')), timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`TLS handshake failed: ${e.message}`));
    });
    // A client that gives up mid-handshake (it did not trust our certificate) closes without an
    // alert the JS stream passes on: without this the accept would wait for the timeout.
    const onClose = (): void => {
      clearTimeout(timer);
      reject(new Error('TLS handshake failed: the peer closed the connection'));
    };
    sock.once('close', onClose);
    sock.once('secure', () => {
      clearTimeout(timer);
      sock.off('close', onClose);
      sock.removeAllListeners('error');
      sock.on('error', () => undefined);
      if (!ISTIO_ALPN.includes(sock.alpnProtocol || '')) return reject(new Error(`ALPN ${sock.alpnProtocol || '(none)'} is not one of ${ISTIO_ALPN.join(', ')}`));
      const peer = verifyPeer(sock, mesh.caPem);
      if (!peer.ok) return reject(new Error(peer.reason));
      const cert = sock.getPeerX509Certificate() as X509Certificate;
      resolve({ stream: sock, peer: peer.identity, certHash: createHash('sha256').update(cert.raw).digest('hex'), certSubject: (cert.subject ?? '').replace(/\n/g, ',') });
    });
  });
}

/**
 * One x-forwarded-client-cert element as Envoy's sidecar inbound writes it
 * (forward_client_cert_details APPEND_FORWARD, set_current_client_cert_details Subject, URI,
 * DNS): By=<our URI SAN>;Hash=<peer cert sha256>;Subject="<peer subject>";URI=<peer URI SAN>.
 * Hash and Subject need the peer certificate, which an HBONE tunnel's handler does not see.
 */
export function formatXfcc(by: SpiffeId, peer: SpiffeId, cert?: { hash: string; subject: string }): string {
  const parts = [`By=${formatSpiffe(by)}`];
  if (cert) parts.push(`Hash=${cert.hash}`, `Subject="${cert.subject.replace(/"/g, '\\"')}"`);
  parts.push(`URI=${formatSpiffe(peer)}`);
  return parts.join(';');
}

export type { Duplex };
