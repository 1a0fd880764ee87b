// The Node.js baseline for benches/compare.sh: a plain `http` server that verifies each POST the
// way a hand-written receiver does (HMAC-SHA256 over the raw body, base64, timing-safe compare).
// Usage: BENCH_SECRET=... node benches/node_server.js PORT
'use strict';
const http = require('http');
const crypto = require('crypto');

const secret = process.env.BENCH_SECRET;
const port = Number(process.argv[2]);

http
  .createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/webhooks/printone') {
      res.statusCode = 404;
      res.end();
      return;
    }
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const expected = Buffer.from(
        crypto.createHmac('sha256', secret).update(body).digest('base64'),
      );
      const received = Buffer.from(String(req.headers['x-webhook-hmac-sha256'] || ''));
      const valid = expected.length === received.length && crypto.timingSafeEqual(expected, received);
      res.statusCode = valid ? 200 : 401;
      res.end();
    });
  })
  .listen(port, '127.0.0.1');
