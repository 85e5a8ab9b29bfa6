'use strict';
// ParleyError and the C API's stable error codes.

const addon = require('./addon');

/** The stable error codes of the C API (never renumbered). */
const codes = Object.freeze({
  OK: 0,
  INVALID_ARGUMENT: 1,
  NOT_FOUND: 2,
  PERMISSION_DENIED: 3,
  ALREADY_EXISTS: 4,
  TOO_LARGE: 5,
  UNAVAILABLE: 6,
  TIMEOUT: 7,
  EPOCH_MISMATCH: 8,
  BACKPRESSURE: 9,
  CORRUPTION: 10,
  INTERNAL: 11,
  UNAUTHENTICATED: 12,
  CLOSED: 13,
  HISTORY_TRIMMED: 14,
  LIMIT_EXCEEDED: 15,
  DELETED: 16,
});

/** The short name of a code, as the chat protocol spells it ('not_found'). */
function codeName(code) {
  return addon.strerror(code);
}

class ParleyError extends Error {
  /**
   * @param {number} code one of `codes`
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.code = code;
    // The short name of the code: error.name === 'not_found', as in the
    // protocol's {code, name, msg}. `instanceof ParleyError` tells the class.
    Object.defineProperty(this, 'name', { value: codeName(code), configurable: true, writable: true });
  }
}
addon.setErrorClass(ParleyError);

function closedError(what) {
  return new ParleyError(codes.CLOSED, `the ${what} is closed: it cannot be used after close()`);
}

module.exports = { codes, codeName, ParleyError, closedError };
