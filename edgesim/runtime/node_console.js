/*
 * Logging in the Node.js worker, in Lambda's text format: console.* writes one entry per call
 * (timestamp, request id, level, text; line breaks become carriage returns), and errors are
 * logged as a title, a tab and the error as JSON.
 */

'use strict';

const path = require('node:path');
const util = require('node:util');

const { writeLog } = require(path.join(__dirname, 'node_protocol.js'));
const { describe, ownFramesRemoved } = require(path.join(__dirname, 'node_errors.js'));

// Where Lambda's runtime keeps the current request id; libraries read it from there.
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');

/** Make process.stdout/stderr write synchronously, so nothing is queued behind a log mark. */
function blockingStdio() {
  for (const stream of [process.stdout, process.stderr]) {
    const handle = stream._handle;
    if (handle && typeof handle.setBlocking === 'function') handle.setBlocking(true);
  }
}

function logLine(level, message, params) {
  const text = util.format(message, ...params);
  const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level}\t${text}`;
  writeLog(line.replace(/\n/g, '\r') + '\n');
}

function patchConsole() {
  const at = (level) => (message, ...params) => logLine(level, message, params);
  console.trace = at('TRACE');
  console.debug = at('DEBUG');
  console.info = at('INFO');
  console.log = console.info;
  console.warn = at('WARN');
  console.error = at('ERROR');
  console.fatal = at('FATAL');
}

/** Log an error as Lambda's runtime does: a title, a tab, and the error as JSON. */
function logError(title, error) {
  const shown = error instanceof Error ? error : new Error(error);
  const replacer = (_key, value) => {
    if (!(value instanceof Error)) return value;
    const fields = { errorType: value.name, errorMessage: value.message, code: value.code };
    const plain = Object.assign(fields, value);
    if (typeof value.stack === 'string') plain.stack = ownFramesRemoved(value.stack);
    return plain;
  };
  let json;
  try {
    json = JSON.stringify(shown, replacer);
  } catch {
    json = JSON.stringify(describe(shown));
  }
  logLine('ERROR', title, ['\t' + json]);
}

module.exports = { REQUEST_ID, blockingStdio, logError, patchConsole };
