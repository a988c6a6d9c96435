// node-coap (npm "coap") as a test client: one request, its answer as one
// JSON line on stdout ({"code", "payload_hex"} or {"error"}); with --observe N
// the first N notifications, one line each. Bodies from --payload-file go
// block-wise (Block1, 1024-byte blocks) when larger than 1 KiB, as node-coap
// users send them.
//   node nodecoap_client.js METHOD URL [--payload-file F] [--format json|octets]
//                           [--observe N [--until TEXT]] [--timeout S]
'use strict';
const coap = require('coap');
const fs = require('fs');

const args = process.argv.slice(2);
const method = args[0].toUpperCase();
const url = new URL(args[1]);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const observe = parseInt(opt('--observe', '0'), 10);
const timeout = parseFloat(opt('--timeout', '30')) * 1000;
const file = opt('--payload-file', null);
const format = opt('--format', null);
const until = opt('--until', null);  // with --observe: stop at a notification containing it

// Written whole before exiting (a pipe takes a large line in pieces).
const out = (obj, exitCode) => process.stdout.write(JSON.stringify(obj) + '\n', () => {
  if (exitCode !== undefined) process.exit(exitCode);
});
setTimeout(() => out({ error: 'timeout' }, 2), timeout);

const req = coap.request({
  hostname: url.hostname, port: parseInt(url.port || '5683', 10),
  pathname: url.pathname, query: url.search.replace(/^\?/, ''),
  method, observe: observe > 0, confirmable: true,
});
if (format === 'json') req.setOption('Content-Format', 'application/json');
if (format === 'octets') req.setOption('Content-Format', 'application/octet-stream');
let body = null;
if (file) {
  body = fs.readFileSync(file);
  if (body.length > 1024) req.setOption('Block1', Buffer.from([0x06]));
}
req.on('error', (e) => out({ error: e.message }, 1));
req.on('response', (res) => {
  if (observe === 0) {
    out({ code: res.code, payload_hex: res.payload.toString('hex') }, 0);
    return;
  }
  let seen = 0;
  const emit = (payload) => {
    const last = ++seen >= observe || (until !== null && seen > 1 && payload.includes(until));
    if (last) res.close();
    out({ code: res.code, payload_hex: payload.toString('hex') }, last ? 0 : undefined);
  };
  // The first answer comes as the stream's first 'data' too.
  res.on('data', (chunk) => emit(chunk));
  res.on('error', (e) => out({ error: e.message }, 1));
});
if (body) req.write(body);
req.end();
