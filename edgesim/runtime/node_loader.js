/*
 * Finding and loading a Node.js function's handler the way Lambda's Node.js runtime does.
 *
 * The handler is `dir/file.fn` (or nested, `file.a.b`). For `file`, in order: an extension-less
 * file; `.js` required, unless the nearest package.json inside the function folder says
 * "type": "module", in which case `.js` is imported; `.mjs` imported; `.cjs` required; last, a
 * package of that name in node_modules. Failures are Lambda's Runtime.* init errors.
 */

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const { RuntimeError } = require(path.join(__dirname, 'node_errors.js'));

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

function requireIfExists(load, file) {
  return fs.existsSync(file) ? load(file) : undefined;
}

async function importIfExists(file) {
  return fs.existsSync(file) ? import(pathToFileURL(file).href) : undefined;
}

async function loadModule(load, root, moduleRoot, moduleName) {
  const base = path.resolve(root, moduleRoot, moduleName);
  const extensionless = requireIfExists(load, base);
  if (extensionless) return extensionless;
  const esm = typeModuleAbove(path.dirname(base), root);
  if (!esm) {
    const commonjs = requireIfExists(load, base + '.js');
    if (commonjs) return commonjs;
  }
  const loaded =
    (esm && (await importIfExists(base + '.js'))) ||
    (await importIfExists(base + '.mjs')) ||
    requireIfExists(load, base + '.cjs');
  if (loaded) return loaded;
  // Last, a package of that name in the function's node_modules.
  return load(load.resolve(moduleName, { paths: [root, path.resolve(root, moduleRoot)] }));
}

/**
 * The handler function `fullHandler` names, loaded from the function folder `root`.
 *
 * `load` is the `require` of the worker's entry file: CommonJS code is required from there, so
 * the "Require stack" of a module that cannot be found names that file alone.
 */
async function loadHandler(load, root, fullHandler) {
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
    loaded = await loadModule(load, root, moduleRoot, moduleName);
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

module.exports = { loadHandler };
