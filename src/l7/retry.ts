// Envoy's retry decision for one finished attempt (router retry_state): whether the outcome is
// retriable under the route's retry_on conditions, whether attempts remain, and the back-off
// before the next one (base 25 ms, max 10x base, fully jittered: a random wait below
// min(base * 2^(n-1), max) before retry n; Istio sets no retry_back_off, so Envoy's default).
import type { RetryPolicy } from './model.js';
import type { RandomSource } from './backends.js';

export const RETRY_BACKOFF_BASE_MS = 25;
export const RETRY_BACKOFF_MAX_MS = 250;

/** How one upstream attempt ended, before anything was sent downstream. */
export type AttemptOutcome =
  | { kind: 'response'; status: number; grpcStatus?: string }
  /** The connection could not be made (Envoy reset reason "connection failure"). */
  | { kind: 'connect-failure' }
  /** The upstream closed or reset before response headers ("connection termination"). */
  | { kind: 'reset' }
  /** HTTP/2 REFUSED_STREAM: only an HTTP/2 upstream produces it. */
  | { kind: 'refused-stream' }
  /** The per-try timeout fired before headers. */
  | { kind: 'per-try-timeout' };

const GATEWAY_ERRORS = new Set([502, 503, 504]);

/** Whether retry_on covers this outcome (Envoy's wouldRetryFromHeaders / wouldRetryFromReset). */
export function isRetriable(policy: Pick<RetryPolicy, 'retryOn' | 'retriableStatusCodes'>, o: AttemptOutcome): boolean {
  const on = new Set(policy.retryOn);
  switch (o.kind) {
    case 'response':
      if (on.has('5xx') && o.status >= 500 && o.status <= 599) return true;
      if (on.has('gateway-error') && GATEWAY_ERRORS.has(o.status)) return true;
      if (on.has('retriable-4xx') && o.status === 409) return true;
      if (on.has('retriable-status-codes') && policy.retriableStatusCodes.includes(o.status)) return true;
      // gRPC conditions read grpc-status from the response headers.
      if (on.has('cancelled') && o.grpcStatus === '1') return true;
      if (on.has('deadline-exceeded') && o.grpcStatus === '4') return true;
      if (on.has('resource-exhausted') && o.grpcStatus === '8') return true;
      if (on.has('internal') && o.grpcStatus === '13') return true;
      if (on.has('unavailable') && o.grpcStatus === '14') return true;
      return false;
    case 'connect-failure':
      // A failed connect is a reset too (Envoy counts every reset as a would-be 5xx).
      return on.has('connect-failure') || on.has('5xx') || on.has('gateway-error') || on.has('reset');
    case 'reset':
      return on.has('5xx') || on.has('gateway-error') || on.has('reset');
    case 'refused-stream':
      return on.has('refused-stream') || on.has('5xx') || on.has('gateway-error') || on.has('reset');
    case 'per-try-timeout':
      return on.has('5xx') || on.has('gateway-error') || on.has('reset');
  }
}

export type RetryDecision =
  | { retry: true; backoffMs: number }
  /** `limitExceeded`: the outcome was retriable but no attempt is left (Envoy flag URX). */
  | { retry: false; limitExceeded: boolean; reason: string };

/**
 * After attempt number `attempt` (1 = the first try) ended with `outcome`: retry or not.
 * `bodyReplayable` is false when the request body was too large to keep for a second try.
 */
export function retryDecision(
  policy: RetryPolicy | undefined,
  outcome: AttemptOutcome,
  attempt: number,
  bodyReplayable: boolean,
  random: RandomSource,
): RetryDecision {
  if (!policy || policy.attempts <= 0) return { retry: false, limitExceeded: false, reason: 'no retry policy' };
  if (!isRetriable(policy, outcome)) return { retry: false, limitExceeded: false, reason: 'not retriable' };
  if (!bodyReplayable) return { retry: false, limitExceeded: false, reason: 'request body too large to retry' };
  if (attempt > policy.attempts) return { retry: false, limitExceeded: true, reason: 'retry limit exceeded' };
  return { retry: true, backoffMs: backoffMs(attempt, random) };
}

/** Jittered exponential back-off before retry number `retry` (1 = the first retry). */
export function backoffMs(retry: number, random: RandomSource, baseMs = RETRY_BACKOFF_BASE_MS, maxMs = RETRY_BACKOFF_MAX_MS): number {
  const ceiling = Math.min(baseMs * 2 ** Math.max(0, retry - 1), maxMs);
  return Math.floor(random() * ceiling);
}
