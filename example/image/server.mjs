// The MicroVM's program: answers every request with a greeting and the code version.
import { createServer } from 'node:http';

const VERSION = 'v1';
createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ hello: 'from a Lambda MicroVM', version: VERSION, path: req.url }));
}).listen(8080, '0.0.0.0');
