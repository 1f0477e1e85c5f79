// TLS-ALPN-01 (RFC 8737) on the proxy's HTTPS port, for berth-acme when port 80 is closed.
//
// The authority connects offering one ALPN protocol, `acme-tls/1`, and expects a self-signed
// certificate for the name it asks for (SNI) carrying the key authorization's digest. This looks
// at the first bytes of every connection (the ClientHello, before any TLS is done), and hands a
// connection that offers `acme-tls/1` to a separate TLS server that has only the challenge
// certificates berth-acme wrote into BERTH_TLS_ALPN_DIR (`<name>.pem`: key and certificate), and
// nothing behind it. Every other connection goes, bytes untouched, to the proxy's own server:
// browsers never offer `acme-tls/1`, so they never see a challenge certificate, and an
// `acme-tls/1` handshake never reaches the hub.
"use strict";

const fs = require("fs");
const path = require("path");
const tls = require("tls");

const DIR = process.env.BERTH_TLS_ALPN_DIR || "";
const PROTOCOL = "acme-tls/1";
const PEEK_MS = 10000; // a ClientHello that has not arrived by then goes to the proxy's server
const MAX_RECORD = 5 + 16384 + 2048; // one TLS record, the largest a ClientHello is sent in
const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

function log(message) {
  process.stderr.write(`berth-proxy: ${message}\n`);
}

// What the ClientHello in `buf` asks for: {complete, servername, protocols}. `complete` is false
// while more bytes are needed; anything that is not a ClientHello is complete with no protocols.
function readHello(buf) {
  const none = { complete: true, servername: "", protocols: [] };
  if (buf.length < 1 || buf[0] !== 0x16) return none; // not a TLS handshake record
  if (buf.length < 5) return { complete: false };
  const end = 5 + buf.readUInt16BE(3);
  if (buf.length < end) return { complete: false };
  let at = 5;
  const need = (n) => {
    if (at + n > end) throw new Error("short");
  };
  try {
    need(4);
    if (buf[at] !== 0x01) return none; // not a ClientHello
    at += 4 + 2 + 32; // handshake header, client_version, random
    need(1);
    at += 1 + buf[at]; // session_id
    need(2);
    at += 2 + buf.readUInt16BE(at); // cipher_suites
    need(1);
    at += 1 + buf[at]; // compression_methods
    need(2);
    const extensionsEnd = Math.min(end, at + 2 + buf.readUInt16BE(at));
    at += 2;
    const found = { complete: true, servername: "", protocols: [] };
    while (at + 4 <= extensionsEnd) {
      const type = buf.readUInt16BE(at);
      const size = buf.readUInt16BE(at + 2);
      const body = buf.subarray(at + 4, Math.min(at + 4 + size, extensionsEnd));
      at += 4 + size;
      if (type === 0x0000 && body.length >= 5 && body[2] === 0x00) {
        // server_name: list length, type host_name (0), name length, name
        found.servername = body.subarray(5, 5 + body.readUInt16BE(3)).toString("latin1");
      } else if (type === 0x0010 && body.length >= 2) {
        // application_layer_protocol_negotiation: list length, then length-prefixed names
        for (let i = 2; i < body.length; i += 1 + body[i]) {
          found.protocols.push(body.subarray(i + 1, i + 1 + body[i]).toString("latin1"));
        }
      }
    }
    return found;
  } catch (err) {
    return none; // malformed: the proxy's own server answers it as it would anyway
  }
}

// The challenge certificate for `servername`, read when the authority asks (written moments
// before by berth-acme; there is nothing to watch between orders).
function challengeContext(servername) {
  const name = String(servername || "").toLowerCase().replace(/\.$/, "");
  if (!NAME.test(name)) return null;
  try {
    const pem = fs.readFileSync(path.join(DIR, `${name}.pem`));
    return tls.createSecureContext({ key: pem, cert: pem });
  } catch (err) {
    return null;
  }
}

function challengeServer() {
  const server = tls.createServer({
    ALPNProtocols: [PROTOCOL],
    handshakeTimeout: PEEK_MS,
    SNICallback: (servername, done) => {
      const context = challengeContext(servername);
      if (context) log(`answering ${PROTOCOL} for ${servername}`);
      done(context ? null : new Error(`no ${PROTOCOL} challenge for this name`), context);
    },
  });
  server.on("secureConnection", (socket) => socket.end()); // the handshake was the answer
  server.on("tlsClientError", (err, socket) => socket.destroy());
  return server;
}

// Put our connection listener in front of the server's own (the TLS one): it reads the
// ClientHello, puts the bytes back, and passes the socket on to the right server.
function route(server) {
  const own = server.listeners("connection");
  server.removeAllListeners("connection");
  const challenges = challengeServer();
  server.on("connection", (socket) => {
    let chunks = [];
    let size = 0;
    let settled = false;
    const pass = (toChallenge) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener("data", onData);
      socket.removeListener("end", onEnd);
      socket.removeListener("error", onError);
      if (socket.destroyed) return;
      socket.pause();
      if (size) socket.unshift(Buffer.concat(chunks, size));
      chunks = [];
      if (toChallenge) challenges.emit("connection", socket);
      else for (const listener of own) listener.call(server, socket);
    };
    const onData = (chunk) => {
      chunks.push(chunk);
      size += chunk.length;
      const hello = readHello(Buffer.concat(chunks, size));
      if (hello.complete) pass(hello.protocols.includes(PROTOCOL));
      else if (size >= MAX_RECORD) pass(false);
    };
    const onEnd = () => pass(false);
    const onError = () => {
      settled = true; // a reset before the ClientHello: nothing to hand on
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(() => pass(false), PEEK_MS);
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
  });
}

module.exports = { DIR, route, readHello };
