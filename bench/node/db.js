'use strict';
// The TFB database tests for the Node peers (express.js, fastify.js), with
// node-postgres (`pg`): one Pool per cluster worker, from DATABASE_URL;
// PG_POOL_MAX connections per worker (default 8).  Every statement is a
// named (prepared) query.  The rules are those of
// /work/shared/specs/tfb.md sections 3.2-3.5, the same as bench/tfb/main.c:
//   /db        one random World row
//   /queries   N rows, one query each, run concurrently on the pool
//   /fortunes  all Fortune rows (no ORDER BY) + one added per request,
//              sorted by message, rendered with HTML escaping
//   /updates   N rows read one by one, new random numbers persisted with one
//              batched UPDATE (sorted by id, a repeated id written once)
// Without DATABASE_URL, `pool` is null and the routes answer 503.
const { Pool } = require('pg');

const url = process.env.DATABASE_URL;
const pool = url
  ? new Pool({ connectionString: url, max: Number(process.env.PG_POOL_MAX || 8) })
  : null;
if (pool) pool.on('error', (err) => console.error('pg pool:', err.message));

const WORLD = {
  name: 'world',
  text: 'SELECT id, randomnumber FROM world WHERE id = $1',
};
const FORTUNES = { name: 'fortunes', text: 'SELECT id, message FROM fortune' };
const UPDATE_TEXT =
  'UPDATE world SET randomnumber = v.r ' +
  'FROM (SELECT unnest($1::int[]) AS i, unnest($2::int[]) AS r) AS v ' +
  'WHERE world.id = v.i';

const randomId = () => 1 + Math.floor(Math.random() * 10000);

// The `queries` parameter: missing, empty, not an integer or < 1 gives 1;
// > 500 gives 500.
function queriesParam(q) {
  const s = typeof q === 'string' ? q : '';
  if (!/^-?\d+$/.test(s)) return 1;
  const n = Number(s);
  return n < 1 ? 1 : n > 500 ? 500 : n;
}

async function world() {
  const { rows } = await pool.query({ ...WORLD, values: [randomId()] });
  const r = rows[0];
  return { id: r.id, randomNumber: r.randomnumber };
}

const single = () => world();

function queries(n) {
  const all = new Array(n);
  for (let i = 0; i < n; i++) all[i] = world();
  return Promise.all(all);
}

async function updates(n) {
  const worlds = await queries(n);
  for (const w of worlds) w.randomNumber = randomId();
  // Sorted by id; a repeated id is written once and reported with the value
  // written (the first one).
  const sorted = worlds.slice().sort((a, b) => a.id - b.id);
  const ids = [];
  const nums = [];
  for (const w of sorted) {
    if (ids.length && ids[ids.length - 1] === w.id) w.randomNumber = nums[nums.length - 1];
    else {
      ids.push(w.id);
      nums.push(w.randomNumber);
    }
  }
  await pool.query({ name: 'update', text: UPDATE_TEXT, values: [ids, nums] });
  return worlds;
}

const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ENTITIES[c]);

// The template: the same fixed fragments as tern's.
const renderFortunes = (list) =>
  '<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>' +
  '<tr><th>id</th><th>message</th></tr>' +
  list.map((f) => `<tr><td>${f.id}</td><td>${escapeHtml(f.message)}</td></tr>`).join('') +
  '</table></body></html>';

async function fortunes() {
  const { rows } = await pool.query(FORTUNES);
  rows.push({ id: 0, message: 'Additional fortune added at request time.' });
  // Code point order (UTF-16 order equals it for these BMP strings).
  rows.sort((a, b) => (a.message < b.message ? -1 : a.message > b.message ? 1 : 0));
  return renderFortunes(rows);
}

module.exports = { pool, queriesParam, single, queries, updates, fortunes };
