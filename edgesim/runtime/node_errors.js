/*
 * Errors in the Node.js worker: the runtime's own error types (Runtime.*) and how any thrown
 * value is described to the invoker (errorType, errorMessage, stackTrace), as Lambda's Node.js
 * runtime describes it.
 */

'use strict';

const path = require('node:path');
const util = require('node:util');

// Stack frames in the worker program's own files (this folder) are never shown.
const OWN_FOLDER = __dirname + path.sep;

/** The runtime's own errors (Runtime.*); their stack is the user's, when there is one. */
class RuntimeError extends Error {
  constructor(type, message, stack) {
    super(message);
    const name = `Runtime.${type}`;
    Object.defineProperty(this, 'name', { value: name, configurable: true, writable: true });
    this.stack = stack === undefined ? `${name}: ${message}` : stack;
  }
}

function ownFramesRemoved(stack) {
  return String(stack)
    .split('\n')
    .filter((line) => !line.includes(OWN_FOLDER));
}

function isErrorLike(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string'
  );
}

/** The error as the invoker sees it: errorType, errorMessage, stackTrace. */
function describe(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: String(error.name),
        errorMessage: String(error.message),
        stackTrace: ownFramesRemoved(error.stack),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), stackTrace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but its message, name or stack ' +
        'could not be read',
      stackTrace: [],
    };
  }
}

module.exports = { RuntimeError, describe, ownFramesRemoved };
