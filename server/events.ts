/**
 * The realtime wire contract, defined once in the client package (client/src/events.ts) so
 * that the server, the tests and every frontend share one set of types.
 */
export * from '../client/src/events';
