// The Node.js twin of index.py: misbehave as the viewer's `case` query parameter asks.
const blocker = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(blocker, 0, 0, ms); // blocks like time.sleep

export const handler = async (event) => {
  const request = event.Records[0].cf.request;
  const testCase = new URLSearchParams(request.querystring).get('case') || '';
  if (testCase === 'raise') throw new Error('the function failed on purpose');
  if (testCase === 'crash') process.exit(3);
  if (testCase === 'hang') sleep(60000);
  if (testCase === 'slow') sleep(600);
  if (testCase === 'memory') {
    const hog = [];
    for (;;) hog.push(Buffer.alloc(8 * 1024 * 1024, 1));
  }
  if (testCase === 'print') console.log('hello from the function');
  return request;
};
