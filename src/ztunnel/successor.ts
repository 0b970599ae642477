// How a ztunnel knows it is the successor in a graceful restart (started beside a running one
// by the supervisor, lab/ztunnel-restart.ts): its predecessor serves until it is ready, so it
// does not listen early (early-listen.ts). A module of its own: main.ts reads it before
// loading anything else.
export const SUCCESSOR_ENV = 'AMBIENT_LAB_SUCCESSOR';

export const isSuccessor = (env: NodeJS.ProcessEnv = process.env): boolean => env[SUCCESSOR_ENV] === '1';
