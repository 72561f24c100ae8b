/**
 * What the writer answers instead of "committed", in its own terms; the HTTP layer
 * (src/http/middleware.ts) maps each to a status. Database trouble is
 * src/db/errors.ts's DatabaseUnavailable.
 */
export class IngestError extends Error {
  override name = 'IngestError';
}

/** Too many events or bytes are waiting to be written: retry later. */
export class QueueFull extends IngestError {
  override name = 'QueueFull';
}

/** The writer has stopped taking events (graceful shutdown). */
export class ShuttingDown extends IngestError {
  override name = 'ShuttingDown';
}

/** One request carries more than the whole queue may hold. */
export class TooManyEvents extends IngestError {
  override name = 'TooManyEvents';
}

/** The database refused these events for what they are (a constraint), not for its state. */
export class EventsRejected extends IngestError {
  override name = 'EventsRejected';
}
