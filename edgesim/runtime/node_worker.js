/*
 * The Node.js worker: one Lambda@Edge Node.js function hosted in its own process.
 *
 * The pool runs it as `node [V8 options] node_worker.js --in-fd N --out-fd M --parent-pid P` and
 * talks to it over the protocol described in edgesim/runtime/protocol.py. Like the Python worker,
 * this file is standalone (CommonJS, no dependencies, Node.js 18+) and carries its own copies of
 * the protocol constants.
 *
 * What it emulates of Lambda's Node.js runtime (18, 20, 22):
 * - the handler lookup (`dir/file.fn`, nested `file.a.b`; an extension-less file, then `.js`
 *   required unless the nearest package.json inside the function folder says "type": "module",
 *   then `.js` imported in that case, `.mjs` imported, `.cjs` required, then a package of that
 *   name in node_modules) and its error types;
 * - async handlers (a returned thenable) and callback handlers; a callback's result is sent
 *   when the event loop has run dry, unless `context.callbackWaitsForEmptyEventLoop` was set to
 *   false. The loop "runs dry" exactly as Node.js sees it ('beforeExit'): pending timers, sockets
 *   and file operations of the function all count, so a function that leaves a socket open
 *   times out as it does on Lambda. A handler that neither calls back nor settles when the loop
 *   runs dry ends with a null result, or with Runtime.NodeJsExit when it is an async function;
 * - console.* in Lambda's text format, one entry per call (line breaks become carriage returns);
 * - uncaught exceptions and unhandled rejections: logged, then the process exits (129 and 128)
 *   without a reply, so the pool reports the exit and never reuses the dying worker.
 */

'use strict';

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const util = require('node:util');
const { pathToFileURL } = require('node:url');

const MAX_PAYLOAD_BYTES = 6291556;
const MAX_MESSAGE_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024;
const LOG_MARK_PREFIX = '\u0000edgesim-log-end ';
const LOG_MARK_END = '\u0000';
const INIT_MARK_ID = 'init';

// Where Lambda's runtime keeps the current request id; libraries read it from there.
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const EXIT_UNCAUGHT_EXCEPTION = 129;
const EXIT_UNHANDLED_REJECTION = 128;
const pause = new Int32Array(new SharedArrayBuffer(4));

/** The runtime's own errors (Runtime.*); their stack is the user's, when there is one. */
class RuntimeError extends Error {
  constructor(type, message, stack) {
    super(message);
    const name = `Runtime.${type}`;
    Object.defineProperty(this, 'name', { value: name, configurable: true, writable: true });
    this.stack = stack === undefined ? `${name}: ${message}` : stack;
  }
}

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

function maxRssBytes() {
  return process.resourceUsage().maxRSS * 1024;
}

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

/* ---- errors ---------------------------------------------------------------------------- */

function ownFramesRemoved(stack) {
  return String(stack)
    .split('\n')
    .filter((line) => !line.includes(__filename));
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

/* ---- loading the handler --------------------------------------------------------------- */

function typeModuleAbove(folder, root) {
  let current = folder;
  for (;;) {
    if (path.basename(current) === 'node_modules') return false;
    const manifest = path.join(current, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module';
      } catch (error) {
        console.warn(`${manifest} cannot be read; it is ignored for ES module detection.`, error);
        return false;
      }
    }
    const parent = path.dirname(current);
    // The function folder is the whole deployment package: nothing above it is looked at.
    if (current === root || parent === current || !parent.startsWith(root)) return false;
    current = parent;
  }
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  return fs.existsSync(file) ? import(pathToFileURL(file).href) : undefined;
}

async function loadModule(root, moduleRoot, moduleName) {
  const base = path.resolve(root, moduleRoot, moduleName);
  const extensionless = requireIfExists(base);
  if (extensionless) return extensionless;
  const esm = typeModuleAbove(path.dirname(base), root);
  if (!esm) {
    const commonjs = requireIfExists(base + '.js');
    if (commonjs) return commonjs;
  }
  const loaded =
    (esm && (await importIfExists(base + '.js'))) ||
    (await importIfExists(base + '.mjs')) ||
    requireIfExists(base + '.cjs');
  if (loaded) return loaded;
  // Last, a package of that name in the function's node_modules.
  return require(require.resolve(moduleName, { paths: [root, path.resolve(root, moduleRoot)] }));
}

async function loadHandler(root, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new RuntimeError(
      'MalformedHandlerName',
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root ` +
        'directories in handler names.',
    );
  }
  const last = path.basename(fullHandler);
  const moduleRoot = fullHandler.slice(0, fullHandler.length - last.length);
  const dot = last.indexOf('.');
  if (dot < 0) throw new RuntimeError('MalformedHandlerName', 'Bad handler');
  const moduleName = last.slice(0, dot);
  let loaded;
  try {
    loaded = await loadModule(root, moduleRoot, moduleName);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new RuntimeError('UserCodeSyntaxError', String(error), error.stack);
    }
    if (error && error.code === 'MODULE_NOT_FOUND') {
      throw new RuntimeError('ImportModuleError', String(error));
    }
    throw error;
  }
  const handler = last
    .slice(dot + 1)
    .split('.')
    .reduce((object, key) => object && object[key], loaded);
  if (!handler) {
    throw new RuntimeError('HandlerNotFound', `${fullHandler} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw new RuntimeError('HandlerNotFound', `${fullHandler} is not a function`);
  }
  return handler;
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

function fatal(reason) {
  writeLog(`edgesim worker: ${reason}\n`);
  process.exit(1);
}

/* ---- invocations ----------------------------------------------------------------------- */

function resultBody(requestId, value) {
  let json;
  try {
    json = JSON.stringify(value === undefined ? null : value);
  } catch (error) {
    logError('Invoke Error', error);
    return errorBody(requestId, {
      errorType: 'Runtime.MarshalError',
      errorMessage: `Unable to stringify response body: ${error.message}`,
      stackTrace: [],
    });
  }
  const body = Buffer.from(json === undefined ? 'null' : json, 'utf8');
  if (body.length > MAX_PAYLOAD_BYTES) {
    return errorBody(requestId, {
      errorType: 'Function.ResponseSizeTooLarge',
      errorMessage:
        `Response payload size (${body.length} bytes) exceeded maximum allowed payload ` +
        `size (${MAX_PAYLOAD_BYTES} bytes).`,
      stackTrace: [],
    });
  }
  const envelope = JSON.stringify({ type: 'result', requestId, maxRssBytes: maxRssBytes() });
  // Splice the value in rather than encoding it a second time.
  return Buffer.concat([Buffer.from(envelope.slice(0, -1) + ',"value":'), body, Buffer.from('}')]);
}

function errorBody(requestId, described) {
  const message = { type: 'error', requestId, ...described, maxRssBytes: maxRssBytes() };
  return Buffer.from(JSON.stringify(message), 'utf8');
}

function isThenable(value) {
  return Boolean(value) && typeof value.then === 'function';
}

class Invoker {
  constructor(channel, handler) {
    this.channel = channel;
    this.handler = handler;
    this.isAsync = handler.constructor && handler.constructor.name === 'AsyncFunction';
    this.queue = [];
    this.busy = false;
    this.onDrain = null; // what the current invocation does when the event loop runs dry
    process.on('beforeExit', () => {
      const action = this.onDrain;
      this.onDrain = null;
      if (action) action();
    });
  }

  accept(message) {
    if (message.type !== 'invoke') fatal(`unexpected message type ${JSON.stringify(message.type)}`);
    this.queue.push(message);
    if (!this.busy) this.next();
  }

  next() {
    const request = this.queue.shift();
    if (request === undefined) return;
    this.busy = true;
    this.channel.hold();
    this.run(request);
  }

  run(request) {
    const requestId = String(request.requestId);
    const deadlineMs = Number(request.deadlineMs);
    globalThis[REQUEST_ID] = requestId;
    let reported = false;
    const report = (body) => {
      if (reported) return;
      reported = true;
      this.onDrain = null;
      writeMark(requestId);
      this.channel.sendBody(body);
      this.busy = false;
      this.channel.release();
      this.next();
    };
    const succeed = (value) => report(resultBody(requestId, value));
    const fail = (error) => {
      logError('Invoke Error', error);
      report(errorBody(requestId, describe(error)));
    };
    const isError = (error) => error !== undefined && error !== null;
    const done = (error, value) => (isError(error) ? fail(error) : succeed(value));
    let finished = false;
    const once = (fn) => (...args) => {
      if (finished) return;
      finished = true;
      fn(...args);
    };
    let waitForEmptyLoop = true;
    const callback = once((error, value) => {
      if (isError(error)) fail(error);
      else if (!waitForEmptyLoop) succeed(value);
      else this.onDrain = () => setImmediate(() => succeed(value));
    });
    const env = process.env;
    const context = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyLoop = value;
      },
      succeed: once((value) => done(null, value)),
      fail: once((error) => done(isError(error) ? error : 'handled')),
      done: once(done),
      functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: undefined,
      identity: undefined,
      invokedFunctionArn: request.invokedFunctionArn,
      awsRequestId: requestId,
      getRemainingTimeInMillis: () => deadlineMs - Date.now(),
    };
    this.onDrain = () => {
      finished = true;
      if (this.isAsync) {
        fail(new RuntimeError('NodeJsExit', 'Runtime exited without providing a reason'));
      } else {
        succeed(null);
      }
    };
    try {
      const result = this.handler(request.event, context, callback);
      if (isThenable(result)) {
        const chained = result.then(context.succeed, context.fail);
        if (isThenable(chained) && typeof chained.catch === 'function') chained.catch(context.fail);
      }
    } catch (error) {
      callback(error);
    }
  }
}

/* ---- start ----------------------------------------------------------------------------- */

function parseArgs(argv) {
  const options = {};
  for (let index = 0; index + 1 < argv.length; index += 2) {
    if (!argv[index].startsWith('--')) fatal(`unexpected argument ${argv[index]}`);
    options[argv[index].slice(2)] = Number(argv[index + 1]);
  }
  return options;
}

async function main(argv) {
  const options = parseArgs(argv);
  if (options['parent-pid'] && process.ppid !== options['parent-pid']) {
    process.exit(0); // the pool died before this worker started
  }
  const { O_RDONLY, O_WRONLY } = fs.constants;
  const channel = new Channel(
    privateFd(options['in-fd'], O_RDONLY),
    privateFd(options['out-fd'], O_WRONLY),
  );
  blockingStdio();
  patchConsole();
  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    process.exit(EXIT_UNCAUGHT_EXCEPTION);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new RuntimeError('UnhandledPromiseRejection', String(reason));
    Object.assign(error, { reason, promise });
    logError('Unhandled Promise Rejection', error);
    process.exit(EXIT_UNHANDLED_REJECTION);
  });
  const root = path.resolve(process.env.LAMBDA_TASK_ROOT || process.cwd());
  let handler;
  try {
    handler = await loadHandler(root, process.env._HANDLER || '');
  } catch (error) {
    logError('Uncaught Exception', error);
    writeMark(INIT_MARK_ID);
    channel.send({ type: 'init_error', ...describe(error), maxRssBytes: maxRssBytes() });
    process.exit(EXIT_UNCAUGHT_EXCEPTION);
  }
  writeMark(INIT_MARK_ID);
  channel.send({ type: 'ready', maxRssBytes: maxRssBytes() });
  const invoker = new Invoker(channel, handler);
  channel.listen((message) => invoker.accept(message));
}

module.exports = {
  MAX_PAYLOAD_BYTES,
  MAX_MESSAGE_BYTES,
  LOG_MARK_PREFIX,
  LOG_MARK_END,
  INIT_MARK_ID,
};

if (require.main === module) {
  main(process.argv.slice(2)).catch((error) => {
    logError('Uncaught Exception', error);
    process.exit(EXIT_UNCAUGHT_EXCEPTION);
  });
}
