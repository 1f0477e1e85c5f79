// Preloaded into configurable-http-proxy (`node --require`, set by berth.deploy.proxyinit).
//
// configurable-http-proxy reads its certificate once, at start. This keeps its HTTPS server
// and swaps the certificate in place: it watches the key and certificate files and, once they
// load together, hands them to Node's `server.setSecureContext`, which new TLS handshakes use;
// open connections (websockets of running kernels included) are not touched. It also adds the
// hardening headers to every response, Strict-Transport-Security only while the certificate
// served is not self-signed (a browser ignores it over an untrusted certificate anyway, and an
// operator's test with the self-signed one must not pin the name to HTTPS for a year).
// TLS-ALPN-01 challenges on the same port: proxy_alpn.js.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const https = require("https");
const tls = require("tls");
const alpn = require("./proxy_alpn.js");

const CERT = process.env.BERTH_TLS_CERT;
const KEY = process.env.BERTH_TLS_KEY;
const POLL_MS = Number(process.env.BERTH_TLS_POLL_MS || 5000);
const HSTS = "max-age=31536000";
const ALWAYS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "strict-origin-when-cross-origin",
};

function log(message) {
  process.stderr.write(`berth-proxy: ${message}\n`);
}

function trustedLooking(certPem) {
  const cert = new crypto.X509Certificate(certPem);
  return cert.issuer !== cert.subject;
}

function describe(certPem) {
  const cert = new crypto.X509Certificate(certPem);
  return `${cert.subjectAltName || cert.subject}, valid until ${cert.validTo}`;
}

function keep(server, base) {
  let loaded = { key: base.key, cert: base.cert };
  let hsts = trustedLooking(base.cert);
  server.prependListener("request", (req, res) => {
    const setHeader = res.setHeader;
    for (const [name, value] of Object.entries(ALWAYS)) setHeader.call(res, name, value);
    if (hsts) setHeader.call(res, "Strict-Transport-Security", HSTS);
    // HSTS is the service's policy, not a user server's: code in a user's container could
    // otherwise send `max-age=0` (clearing it for every user's browser) or pin other hosts
    // of the domain with includeSubDomains. The proxy copies upstream headers with
    // setHeader (http-proxy), so that is where theirs is dropped.
    res.setHeader = function (name, value) {
      if (String(name).toLowerCase() === "strict-transport-security") return this;
      return setHeader.call(this, name, value);
    };
  });
  const reload = () => {
    let key, cert;
    try {
      key = fs.readFileSync(KEY);
      cert = fs.readFileSync(CERT);
    } catch (err) {
      log(`cannot read the certificate (${err.code}); keeping the one loaded`);
      return;
    }
    if (key.equals(loaded.key) && cert.equals(loaded.cert)) return;
    try {
      const options = { ...base, key, cert };
      tls.createSecureContext(options); // throws when the key does not fit the certificate
      server.setSecureContext(options);
    } catch (err) {
      // Mid-replacement (the key is written first) or a broken file: the next change retries.
      log(`not loading the new certificate yet: ${err.message}`);
      return;
    }
    loaded = { key, cert };
    hsts = trustedLooking(cert);
    log(`serving a new certificate to new connections: ${describe(cert)}`);
  };
  fs.watchFile(CERT, { interval: POLL_MS }, reload);
  fs.watchFile(KEY, { interval: POLL_MS }, reload);
  log(`serving ${describe(base.cert)}; watching ${CERT} for a new one`);
}

const createServer = https.createServer;
https.createServer = function (options, ...rest) {
  const server = createServer.call(this, options, ...rest);
  if (CERT && KEY && options && options.cert && options.key) keep(server, options);
  if (alpn.DIR) alpn.route(server);
  return server;
};
