'use strict';
// Fastify peer for tern's TFB bench: GET /plaintext, GET /json,
// POST /validate and the database tests GET /db, /queries, /fortunes,
// /updates (db.js: pg Pool from DATABASE_URL; 503 without it).
// Usage: node fastify.js PORT   (or PORT=N; WORKERS=N, default 2; HOST)
// Fastify defaults (logger off); /json declares a response schema, Fastify's
// documented fast path (fast-json-stringify compiles a serializer for it).
// /validate uses Fastify's route validation: `schema.body` is
// bench/validate/schema.json, compiled by Fastify's own ajv with ajv-formats
// added the documented way (`ajv.plugins`); Fastify answers 400 for an
// invalid body.  The same schema as the response schema serializes the echo.
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
      console.error(`fastify worker ${w.process.pid} died (${signal || code})`);
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
  const app = require('fastify')({
    logger: false,
    ajv: { plugins: [require('ajv-formats')] },
  });

  const jsonSchema = {
    response: {
      200: { type: 'object', properties: { message: { type: 'string' } } },
    },
  };

  app.get('/plaintext', (req, reply) => {
    reply.header('Server', 'Fastify').type('text/plain').send('Hello, World!');
  });
  app.get('/json', { schema: jsonSchema }, (req, reply) => {
    reply.header('Server', 'Fastify').send({ message: 'Hello, World!' });
  });

  // Fastify's ajv is the default (draft-07) class, which does not load the
  // 2020-12 meta-schema named by $schema.  The file uses only keywords that
  // mean the same in both drafts, so it is passed without $schema.
  const bodySchema = { ...require('../validate/schema.json') };
  delete bodySchema.$schema;
  const validateSchema = { body: bodySchema, response: { 200: bodySchema } };

  app.post('/validate', { schema: validateSchema }, (req, reply) => {
    reply.header('Server', 'Fastify').send(req.body);
  });

  // The database tests (db.js), with response schemas for the JSON ones
  // (fast-json-stringify, as for /json).  A rejected promise gets Fastify's
  // 500.
  const db = require('./db');
  const worldSchema = {
    type: 'object',
    properties: { id: { type: 'integer' }, randomNumber: { type: 'integer' } },
  };
  const one = { schema: { response: { 200: worldSchema } } };
  const many = { schema: { response: { 200: { type: 'array', items: worldSchema } } } };
  const dbRoute = (fn) => async (req, reply) => {
    reply.header('Server', 'Fastify');
    if (!db.pool) {
      reply.code(503);
      return { status: 503, title: 'Service Unavailable' };
    }
    return fn(req, reply);
  };
  app.get('/db', one, dbRoute(() => db.single()));
  app.get('/queries', many, dbRoute((req) => db.queries(db.queriesParam(req.query.queries))));
  app.get('/updates', many, dbRoute((req) => db.updates(db.queriesParam(req.query.queries))));
  app.get('/fortunes', dbRoute(async (req, reply) => {
    reply.type('text/html; charset=utf-8');
    return db.fortunes();
  }));

  app.listen({ port, host }, (err) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
  });
}
