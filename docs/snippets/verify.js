#!/usr/bin/env node
// Verify a Print.one webhook signature (Node.js, no dependencies, CommonJS).
//
// Library use:
//   const { verify, headerPairs } = require('./verify.js');
//   const { outcome, index } = verify(secrets, rawBodyBuffer, headerPairs(req.rawHeaders));
//
// Command line:
//   node verify.js SECRET BODY_FILE SIGNATURE   # exit 0 silently when valid, else 1
//   node verify.js --vectors FILE               # run the test vector file
//
// See docs/VERIFYING.md for the rules implemented here.
'use strict';

const crypto = require('crypto');
const fs = require('fs');

// Both names, matched case-insensitively (ASCII only: no `u` flag).
const SIGNATURE_HEADER = /^x-(?:webhook|printone)-hmac-sha256$/i;

// Turn Node's flat req.rawHeaders ([name, value, name, value, ...]) into
// [name, value] pairs. Use rawHeaders, not req.headers: req.headers joins
// repeated custom headers with ", ", which hides repeats.
function headerPairs(rawHeaders) {
  const pairs = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i], rawHeaders[i + 1]]);
  return pairs;
}

// secrets: array of strings, tried in order (several during a rotation)
// body:    Buffer with the raw request body, exactly as received
// headers: array of [name, value] pairs, repeats included
// Returns { outcome, index }; index is the matching secret's position when valid, else null.
function verify(secrets, body, headers) {
  // Rule 1: an empty secret (or none at all) is a configuration error.
  if (secrets.length === 0 || secrets.some((s) => s === '')) return { outcome: 'empty_secret', index: null };

  // Rule 2: collect every value of both names, trimmed of spaces and tabs.
  const values = headers
    .filter(([name]) => SIGNATURE_HEADER.test(name))
    .map(([, value]) => value.replace(/^[ \t]+|[ \t]+$/g, ''));
  if (values.length === 0) return { outcome: 'missing', index: null };
  if (values.some((v) => v !== values[0])) return { outcome: 'ambiguous', index: null };
  const value = values[0];

  // Rule 3: exactly 44 characters of canonical, padded, standard base64 that
  // decode to 32 bytes. Buffer.from is lenient, so re-encode and compare: that
  // rejects URL-safe characters, missing padding, whitespace and spare bits.
  const mac = Buffer.from(value, 'base64');
  if (value.length !== 44 || mac.length !== 32 || mac.toString('base64') !== value) {
    return { outcome: 'malformed', index: null };
  }

  // Rule 4: HMAC-SHA256 over the raw body with each secret (its UTF-8 bytes),
  // compared in constant time.
  for (let i = 0; i < secrets.length; i++) {
    const expected = crypto.createHmac('sha256', Buffer.from(secrets[i], 'utf8')).update(body).digest();
    if (crypto.timingSafeEqual(expected, mac)) return { outcome: 'valid', index: i };
  }
  return { outcome: 'mismatch', index: null };
}

function runVectors(path) {
  const { vectors } = JSON.parse(fs.readFileSync(path, 'utf8'));
  let passed = 0;
  let failed = 0;
  for (const v of vectors) {
    const { outcome, index } = verify(v.secrets, Buffer.from(v.body, 'utf8'), v.headers);
    const want = v.expected;
    const wantIndex = want.matched_secret === undefined ? null : want.matched_secret;
    if (outcome === want.outcome && index === wantIndex) {
      passed++;
    } else {
      failed++;
      console.log(`FAIL ${v.name}: expected ${want.outcome} ${wantIndex}, got ${outcome} ${index}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

function main(args) {
  if (args.length === 2 && args[0] === '--vectors') {
    try {
      return runVectors(args[1]);
    } catch (e) {
      console.error(`cannot read vectors: ${e.message}`);
      return 2;
    }
  }
  if (args.length !== 3 || args[0] === '--vectors') {
    console.error('usage: node verify.js SECRET BODY_FILE SIGNATURE | node verify.js --vectors FILE');
    return 2;
  }
  const [secret, bodyFile, signature] = args;
  let body;
  try {
    body = fs.readFileSync(bodyFile); // raw bytes: never decode or re-serialise
  } catch (e) {
    console.error(`cannot read ${bodyFile}: ${e.message}`);
    return 2;
  }
  const { outcome } = verify([secret], body, [['x-webhook-hmac-sha256', signature]]);
  if (outcome === 'valid') return 0;
  console.error(outcome);
  return 1;
}

module.exports = { verify, headerPairs };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
