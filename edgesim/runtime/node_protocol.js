/*
 * The Node.js worker's side of the protocol described in edgesim/runtime/protocol.py: its own
 * copies of the protocol constants, the request and reply pipes, and the log marks written on
 * stdout that end each invocation's log.
 */

'use strict';

const fs = require('node:fs');
const net = require('node:net');

const MAX_PAYLOAD_BYTES = 6291556;
const MAX_MESSAGE_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024;
const LOG_MARK_PREFIX = '\u0000edgesim-log-end ';
const LOG_MARK_END = '\u0000';
const INIT_MARK_ID = 'init';

const pause = new Int32Array(new SharedArrayBuffer(4));

/* ---- output ---------------------------------------------------------------------------- */

function writeAll(fd, data) {
  const buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(fd, buffer, offset, buffer.length - offset);
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error;
      Atomics.wait(pause, 0, 0, 1); // a full non-blocking pipe: give the reader a moment
    }
  }
}

function writeLog(text) {
  try {
    writeAll(1, text);
  } catch {
    // The log pipe is gone: the pool is ending this worker.
  }
}

function writeMark(markId) {
  writeLog(LOG_MARK_PREFIX + markId + LOG_MARK_END);
}

function fatal(reason) {
  writeLog(`edgesim worker: ${reason}\n`);
  process.exit(1);
}

/* ---- the protocol pipes ---------------------------------------------------------------- */

/** Reopen an inherited pipe end as a new close-on-exec fd, so the function's children lack it. */
function privateFd(fd, flags) {
  try {
    const copy = fs.openSync(`/dev/fd/${fd}`, flags | fs.constants.O_NONBLOCK);
    fs.closeSync(fd);
    return copy;
  } catch {
    return fd;
  }
}

function blockingPipe(fd) {
  try {
    const socket = new net.Socket({ fd, readable: false, writable: true });
    socket.unref();
    if (socket._handle && typeof socket._handle.setBlocking === 'function') {
      socket._handle.setBlocking(true);
    }
    return socket;
  } catch {
    return null;
  }
}

class Channel {
  constructor(inFd, outFd) {
    this.inFd = inFd;
    this.outFd = outFd;
    // A handle that clears O_NONBLOCK on the reply pipe: large replies then go out in one
    // blocking write instead of a wait-and-retry loop. Kept referenced, or it would close.
    this.outHandle = blockingPipe(outFd);
    this.chunks = [];
    this.size = 0;
    this.socket = null;
  }

  send(message) {
    this.sendBody(Buffer.from(JSON.stringify(message), 'utf8'));
  }

  sendBody(body) {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length, 0);
    writeAll(this.outFd, Buffer.concat([header, body]));
  }

  /** Read requests from now on; `onRequest` gets each decoded message. */
  listen(onRequest) {
    this.socket = new net.Socket({ fd: this.inFd, readable: true, writable: false });
    this.socket.on('data', (chunk) => {
      this.chunks.push(chunk);
      this.size += chunk.length;
      for (let message = this.take(); message !== null; message = this.take()) {
        onRequest(message);
      }
    });
    // The pool closed the pipe or died: nothing more will come.
    this.socket.on('end', () => process.exit(0));
    this.socket.on('error', () => process.exit(0));
  }

  /** While an invocation runs, the request pipe must not keep the event loop alive. */
  hold() {
    this.socket.unref();
  }

  release() {
    this.socket.ref();
  }

  take() {
    if (this.size < 4) return null;
    if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)];
    const length = this.chunks[0].readUInt32BE(0);
    if (length > MAX_MESSAGE_BYTES) fatal(`request of ${length} bytes is over the limit`);
    if (this.size < 4 + length) return null;
    const data = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const rest = data.subarray(4 + length);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    let message;
    try {
      message = JSON.parse(data.toString('utf8', 4, 4 + length));
    } catch (error) {
      fatal(`request is not JSON: ${error.message}`);
    }
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      fatal('request is not a JSON object');
    }
    return message;
  }
}

module.exports = {
  MAX_PAYLOAD_BYTES,
  MAX_MESSAGE_BYTES,
  LOG_MARK_PREFIX,
  LOG_MARK_END,
  INIT_MARK_ID,
  Channel,
  fatal,
  privateFd,
  writeLog,
  writeMark,
};
