'use strict';
// Express peer for tern's TFB bench: GET /plaintext, GET /json,
// POST /validate and the database tests GET /db, /queries, /fortunes,
// /updates (db.js: pg Pool from DATABASE_URL; 503 without it).
// Usage: node express.js PORT   (or PORT=N; WORKERS=N, default 2; HOST)
// /validate: express.json() parses the body, ajv (JSON Schema 2020-12 with
// ajv-formats, compiled once at start) checks it against
// bench/validate/schema.json; 422 with ajv's errors when invalid, else the
// body is echoed.
const cluster = require('node:cluster');

const port = Number(process.argv[2] || process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';
const workers = Number(process.env.WORKERS || 2);

if (cluster.isPrimary) {
  // The primary only accepts connections and hands them to the workers.
  for (let i = 0; i < workers; i++) cluster.fork();
  let stopping = false;
  cluster.on('exit', (w, code, signal) => {
    if (!stopping) {
      console.error(`express worker ${w.process.pid} died (${signal || code})`);
      process.exit(1);
    }
    if (Object.keys(cluster.workers).length === 0) process.exit(0);
  });
  // SIGTERM/SIGINT: stop the workers, exit once they are gone (reaped here).
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const express = require('express');
  const app = express();
  app.disable('x-powered-by'); // we send Server instead
  app.disable('etag');         // no ETag hashing of every body (nginx sends none either)

  app.get('/plaintext', (req, res) => {
    res.set('Server', 'Express').type('text/plain').send('Hello, World!');
  });
  app.get('/json', (req, res) => {
    res.set('Server', 'Express').json({ message: 'Hello, World!' });
  });

  // Compiled once per worker, before the first request.
  const Ajv2020 = require('ajv/dist/2020');
  const addFormats = require('ajv-formats');
  const ajv = new Ajv2020();
  addFormats(ajv);
  const validateBody = ajv.compile(require('../validate/schema.json'));

  app.post('/validate', express.json({ limit: '1mb' }), (req, res) => {
    res.set('Server', 'Express');
    if (!validateBody(req.body)) {
      res.status(422).json({ status: 422, title: 'Unprocessable Content', errors: validateBody.errors });
      return;
    }
    res.json(req.body);
  });

  // The database tests (db.js).  Express 5 forwards a rejected promise to
  // its error handler (500).
  const db = require('./db');
  const dbRoute = (fn) => async (req, res) => {
    res.set('Server', 'Express');
    if (!db.pool) {
      res.status(503).json({ status: 503, title: 'Service Unavailable' });
      return;
    }
    await fn(req, res);
  };
  app.get('/db', dbRoute(async (req, res) => {
    res.json(await db.single());
  }));
  app.get('/queries', dbRoute(async (req, res) => {
    res.json(await db.queries(db.queriesParam(req.query.queries)));
  }));
  app.get('/updates', dbRoute(async (req, res) => {
    res.json(await db.updates(db.queriesParam(req.query.queries)));
  }));
  app.get('/fortunes', dbRoute(async (req, res) => {
    res.type('text/html; charset=utf-8').send(await db.fortunes());
  }));

  app.listen(port, host, (err) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
  });
}
