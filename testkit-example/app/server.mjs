// The sandbox app: answers /status, and takes its session from the /run hook.
import { createServer } from 'node:http';

let session;
createServer((req, res) => {
  if (req.url === '/aws/lambda-microvms/runtime/v1/run') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { session = JSON.parse(body).runHookPayload; res.end(); });
    return;
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ status: 'ok', session }));
}).listen(8080, '0.0.0.0');
