/*
 * The Node.js worker: one Lambda@Edge Node.js function hosted in its own process.
 *
 * The pool runs it as `node [V8 options] node_worker.js --in-fd N --out-fd M --parent-pid P` and
 * talks to it over the protocol described in edgesim/runtime/protocol.py. Like the Python worker,
 * the program is standalone (CommonJS, no dependencies, Node.js 18+) and carries its own copies
 * of the protocol constants. This file is its entry: it starts the worker and runs invocations.
 * The rest lives beside it, each part in its own file:
 * - node_protocol.js: the protocol constants, the request and reply pipes, the log marks;
 * - node_loader.js: finding and loading the handler as Lambda does (`dir/file.fn`, nested
 *   `file.a.b`, CommonJS or ES module, a package in node_modules) and its error types;
 * - node_console.js: console.* in Lambda's text format, one entry per call (line breaks become
 *   carriage returns), and errors logged as Lambda logs them;
 * - node_errors.js: the runtime's own errors (Runtime.*) and how an error is described.
 *
 * What this file emulates of Lambda's Node.js runtime (18, 20, 22):
 * - async handlers (a returned thenable) and callback handlers; a callback's result is sent
 *   when the event loop has run dry, unless `context.callbackWaitsForEmptyEventLoop` was set to
 *   false. The loop "runs dry" exactly as Node.js sees it ('beforeExit'): pending timers, sockets
 *   and file operations of the function all count, so a function that leaves a socket open
 *   times out as it does on Lambda. A handler that neither calls back nor settles when the loop
 *   runs dry ends with a null result, or with Runtime.NodeJsExit when it is an async function;
 * - uncaught exceptions and unhandled rejections: logged, then the process exits (129 and 128)
 *   without a reply, so the pool reports the exit and never reuses the dying worker.
 */

'use strict';

const fs = require('node:fs');
const path = require('node:path');

const {
  MAX_PAYLOAD_BYTES,
  MAX_MESSAGE_BYTES,
  LOG_MARK_PREFIX,
  LOG_MARK_END,
  INIT_MARK_ID,
  Channel,
  fatal,
  privateFd,
  writeMark,
} = require(path.join(__dirname, 'node_protocol.js'));
const { REQUEST_ID, blockingStdio, logError, patchConsole } = require(
  path.join(__dirname, 'node_console.js'),
);
const { RuntimeError, describe } = require(path.join(__dirname, 'node_errors.js'));
const { loadHandler } = require(path.join(__dirname, 'node_loader.js'));

const EXIT_UNCAUGHT_EXCEPTION = 129;
const EXIT_UNHANDLED_REJECTION = 128;

// VmHWM is this program's own peak; maxRSS (getrusage) also carries the peak of the address
// space it replaced at exec, the forking parent's (small under unshare, edgesim's without it).
// Reading /proc costs ~20 us an invocation, getrusage ~1 us: getrusage answers whenever it
// provably is this program's own peak.
function procPeakBytes() {
  try {
    const status = fs.readFileSync('/proc/self/status', 'latin1');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    if (match) return Number(match[1]) * 1024;
  } catch (_) {
    // not Linux
  }
  return null;
}

const startRusageKb = process.resourceUsage().maxRSS;
const startPeak = procPeakBytes();
// Inherited no more than this program already had at start: getrusage is exact from here on.
const rusageIsOwn = startPeak === null || startPeak >= startRusageKb * 1024;

function maxRssBytes() {
  const rusageKb = process.resourceUsage().maxRSS;
  // Past its value at start, getrusage's maximum can only be this program's own peak.
  if (rusageIsOwn || rusageKb > startRusageKb) return rusageKb * 1024;
  const peak = procPeakBytes();
  return peak === null ? rusageKb * 1024 : peak;
}

/* ---- invocations ----------------------------------------------------------------------- */

function resultBody(requestId, invocationId, value) {
  let json;
  try {
    json = JSON.stringify(value === undefined ? null : value);
  } catch (error) {
    logError('Invoke Error', error);
    return errorBody(requestId, invocationId, {
      errorType: 'Runtime.MarshalError',
      errorMessage: `Unable to stringify response body: ${error.message}`,
      stackTrace: [],
    });
  }
  const body = Buffer.from(json === undefined ? 'null' : json, 'utf8');
  if (body.length > MAX_PAYLOAD_BYTES) {
    return errorBody(requestId, invocationId, {
      errorType: 'Function.ResponseSizeTooLarge',
      errorMessage:
        `Response payload size (${body.length} bytes) exceeded maximum allowed payload ` +
        `size (${MAX_PAYLOAD_BYTES} bytes).`,
      stackTrace: [],
    });
  }
  const envelope = JSON.stringify({
    type: 'result',
    requestId,
    invocationId,
    maxRssBytes: maxRssBytes(),
  });
  // Splice the value in rather than encoding it a second time.
  return Buffer.concat([Buffer.from(envelope.slice(0, -1) + ',"value":'), body, Buffer.from('}')]);
}

function errorBody(requestId, invocationId, described) {
  const message = {
    type: 'error',
    requestId,
    invocationId,
    ...described,
    maxRssBytes: maxRssBytes(),
  };
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
    // The pool accepts only a reply echoing this id; the function is not handed it.
    const invocationId = request.invocationId;
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
    const succeed = (value) => report(resultBody(requestId, invocationId, value));
    const fail = (error) => {
      logError('Invoke Error', error);
      report(errorBody(requestId, invocationId, describe(error)));
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
    handler = await loadHandler(require, root, process.env._HANDLER || '');
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

// The protocol constants, so they can be checked against edgesim/runtime/protocol.py.
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
