// The downstream request body, streamed to the current upstream attempt and kept (up to a
// limit) so a retry can send it again, as Envoy buffers a request for its retry policy. Past
// the limit the kept copy is dropped and the request is no longer retriable; the current
// attempt still gets every byte. Backpressure flows from the attempt's stream to the client.
import { PassThrough, type Readable } from 'node:stream';

export const DEFAULT_RETRY_BUFFER_LIMIT = 64 * 1024;

export class RequestBody {
  /** Body bytes received from downstream so far. */
  received = 0;
  ended = false;
  private kept: Buffer[] = [];
  private keptBytes = 0;
  /** Bytes were handed on without being kept: a new attempt cannot have the whole body. */
  private dropped = false;
  private sink?: PassThrough;
  private error?: Error;
  private readonly endWaiters: Array<() => void> = [];
  private discarding = false;

  /**
   * `hasBody`: the request announces a body (content-length > 0 or transfer-encoding).
   * `limit`: bytes kept for retries; 0 keeps nothing (no retry policy).
   */
  constructor(private readonly src: Readable, readonly hasBody: boolean, private limit: number) {
    src.pause();
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    src.on('end', () => {
      this.ended = true;
      this.sink?.end();
      for (const w of this.endWaiters.splice(0)) w();
    });
    src.on('error', (err) => {
      this.error = err;
      this.sink?.destroy(err);
    });
    if (!hasBody) src.resume();
  }

  /** Set the retry buffer limit once the route is known, before the first attempt reads anything. */
  setLimit(limit: number): void {
    this.limit = limit;
  }

  /** Whether a new attempt can still get the whole body from the start. */
  get replayable(): boolean {
    return !this.dropped && !this.error;
  }

  /** Resolves when the client has sent the whole request (Envoy starts its route timeout then). */
  whenEnded(): Promise<void> {
    if (this.ended || this.error) return Promise.resolve();
    return new Promise((resolve) => this.endWaiters.push(resolve));
  }

  private onData(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.discarding) return;
    if (!this.dropped && this.keptBytes + chunk.length <= this.limit) {
      this.kept.push(chunk);
      this.keptBytes += chunk.length;
    } else {
      this.dropped = true;
      this.kept = [];
      this.keptBytes = 0;
    }
    if (!this.sink) {
      // Nobody to take it (between attempts): stop reading; what arrived is kept or, past the limit, lost to retries.
      this.src.pause();
      return;
    }
    const sink = this.sink;
    if (!sink.write(chunk)) {
      this.src.pause();
      sink.once('drain', () => {
        if (this.sink === sink) this.src.resume();
      });
    }
  }

  /** A stream with the whole body for a new attempt, or undefined when that is no longer possible. */
  attach(): Readable | undefined {
    if (!this.hasBody) return undefined;
    if (!this.replayable) return undefined;
    const sink = new PassThrough();
    for (const c of this.kept) sink.write(c);
    this.sink = sink;
    if (this.ended) sink.end();
    else this.src.resume();
    return sink;
  }

  /** The current attempt is over: stop feeding it. */
  detach(): void {
    const s = this.sink;
    this.sink = undefined;
    if (s && !s.destroyed) s.destroy();
    if (!this.ended) this.src.pause();
  }

  /** A local reply was sent: read and drop the rest so the connection can be reused. */
  discard(): void {
    this.detach();
    this.discarding = true;
    this.dropped = true;
    this.kept = [];
    this.src.resume();
  }
}
