// The central history's SQL (common/pg_history.h): one migration per schema
// version, applied in order by PgHistory::migrate(). Forward-only: a version once
// released is never edited; a change is a new entry.
//
// Everything lives in the schema `cronrun` so that contrib/fleet-role.sql can grant
// a reader role SELECT on it and a forwarder role EXECUTE on the two functions
// without either being able to write the tables directly. The functions are
// SECURITY DEFINER with a fixed search_path (a caller's search_path never chooses
// which `runs` they write).
#pragma once

#include <array>
#include <cstdint>

#include "common/pg_history.h"

namespace cronrun::pg::schema {

// Arbitrary constant: the advisory lock (transaction-scoped) that serializes
// migrations.
inline constexpr int64_t kMigrationLock = 0x63726f6e72756eLL;  // "cronrun"

// kMigrations[i] takes the database from version i to i + 1. The caller sets
// cronrun_meta.schema_version in the same transaction.
inline constexpr std::array<const char*, kSchemaVersion> kMigrations = {
    // 0 -> 1
    R"sql(
CREATE SCHEMA IF NOT EXISTS cronrun;

CREATE TABLE cronrun.cronrun_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- One row per run. `record` is the whole run record (DESIGN section 4), the
-- truth; the other columns are copied out of it for filters. tick and fence come
-- from record.fleet: a claimed run has both, a local or skipped run neither.
CREATE TABLE cronrun.runs (
  run_id      text PRIMARY KEY,
  job         text NOT NULL,
  host        text NOT NULL,
  tick        timestamptz,
  fence       bigint,
  status      text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'killed', 'timeout', 'oom',
                                              'skipped', 'error', 'lost')),
  started_at  timestamptz NOT NULL,
  finished_at timestamptz,
  wall_s      double precision,
  exit_code   integer,
  record      jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- A tick is claimed once fleet-wide: one row per (job, tick) among claimed runs.
CREATE UNIQUE INDEX runs_job_tick ON cronrun.runs (job, tick) WHERE fence IS NOT NULL;
CREATE INDEX runs_started ON cronrun.runs (started_at);
CREATE INDEX runs_job_started ON cronrun.runs (job, started_at);
CREATE INDEX runs_running ON cronrun.runs (updated_at) WHERE status = 'running';

-- The highest fence seen per job, and whose it was.
CREATE TABLE cronrun.job_fences (
  job   text PRIMARY KEY,
  fence bigint NOT NULL,
  host  text NOT NULL,
  tick  timestamptz
);

-- Records set aside: refused (stale fence) or rejected for their content. The
-- payload is the record as sent, normalized when it parsed, so a replayed record
-- is set aside once.
CREATE TABLE cronrun.dead_letters (
  id          bigserial PRIMARY KEY,
  host        text NOT NULL,
  run_id      text,
  received_at timestamptz NOT NULL DEFAULT now(),
  reason      text NOT NULL,
  payload     text NOT NULL
);
CREATE UNIQUE INDEX dead_letters_payload ON cronrun.dead_letters (md5(payload));

CREATE TABLE cronrun.hosts (
  host      text PRIMARY KEY,
  last_seen timestamptz NOT NULL
);

-- One journal record {"type": "start"|"finish", "record": {...}} applied to the
-- tables (the rules are in common/pg_history.h). Raises on a record it cannot
-- store; put_batch turns that into a dead letter. A stale fence is not an error:
-- it is set aside here and answered 'refused'.
CREATE FUNCTION cronrun.apply_record(p_host text, p_line text, OUT outcome text, OUT detail text, OUT run_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cronrun, pg_temp AS $fn$
DECLARE
  doc      jsonb;
  rec      jsonb;
  fl       jsonb;
  v_payload text;
  v_type   text;
  v_job    text;
  v_host   text;
  v_tick   timestamptz;
  v_fence  bigint;
  v_status text;
  cur      cronrun.runs%ROWTYPE;
  holder   cronrun.runs%ROWTYPE;
BEGIN
  detail := NULL;
  run_id := NULL;
  doc := p_line::jsonb;
  v_payload := doc::text;
  v_type := doc->>'type';
  rec := doc->'record';
  IF v_type IS NULL OR v_type NOT IN ('start', 'finish') THEN
    RAISE EXCEPTION 'record type is %, not start or finish', coalesce(v_type, 'missing');
  END IF;
  IF jsonb_typeof(rec) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'no run record object';
  END IF;
  run_id := rec->>'run_id';
  v_job := rec->>'job';
  IF coalesce(run_id, '') = '' THEN RAISE EXCEPTION 'run_id missing'; END IF;
  IF coalesce(v_job, '') = '' THEN RAISE EXCEPTION 'job missing'; END IF;
  IF rec->>'started_at' IS NULL THEN RAISE EXCEPTION 'started_at missing'; END IF;
  fl := CASE WHEN jsonb_typeof(rec->'fleet') = 'object' THEN rec->'fleet' ELSE '{}'::jsonb END;
  v_host := coalesce(nullif(fl->>'host', ''), nullif(rec->>'host', ''), p_host);
  v_tick := (fl->>'tick')::timestamptz;
  v_fence := (fl->>'fence')::bigint;
  v_status := CASE WHEN v_type = 'start' THEN 'running' ELSE rec->>'status' END;
  IF v_fence IS NOT NULL AND v_tick IS NULL THEN
    RAISE EXCEPTION 'fleet.fence without fleet.tick';
  END IF;

  SELECT * INTO cur FROM cronrun.runs r WHERE r.run_id = apply_record.run_id FOR UPDATE;
  IF FOUND THEN
    IF v_type = 'start' OR (cur.status NOT IN ('running', 'lost') AND cur.record = rec) THEN
      outcome := 'unchanged';
      RETURN;
    END IF;
    UPDATE cronrun.runs r SET job = v_job, host = v_host, tick = v_tick, fence = v_fence,
           status = v_status, started_at = (rec->>'started_at')::timestamptz,
           finished_at = (rec->>'finished_at')::timestamptz, wall_s = (rec->>'wall_s')::double precision,
           exit_code = (rec->>'exit_code')::integer, record = rec, updated_at = now()
     WHERE r.run_id = apply_record.run_id;
    outcome := 'stored';
    RETURN;
  END IF;
  IF v_fence IS NOT NULL THEN
    SELECT * INTO holder FROM cronrun.runs r WHERE r.job = v_job AND r.tick = v_tick AND r.fence IS NOT NULL FOR UPDATE;
    IF FOUND THEN
      IF holder.fence >= v_fence THEN
        detail := format('stale fence: tick %s of job %s is held by fence %s (host %s, run %s); this record has fence %s',
                         to_char(v_tick AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), v_job,
                         holder.fence, holder.host, holder.run_id, v_fence);
        INSERT INTO cronrun.dead_letters (host, run_id, reason, payload)
          VALUES (p_host, apply_record.run_id, detail, v_payload) ON CONFLICT (md5(payload)) DO NOTHING;
        outcome := 'refused';
        RETURN;
      END IF;
      -- The row holding the tick is the stale one: a newer holder claimed it.
      INSERT INTO cronrun.dead_letters (host, run_id, reason, payload)
        VALUES (holder.host, holder.run_id,
                format('stale fence: superseded by fence %s (host %s, run %s)', v_fence, v_host, apply_record.run_id),
                jsonb_build_object('type', CASE WHEN holder.status = 'running' THEN 'start' ELSE 'finish' END,
                                   'record', holder.record)::text)
        ON CONFLICT (md5(payload)) DO NOTHING;
      DELETE FROM cronrun.runs r WHERE r.run_id = holder.run_id;
    END IF;
  END IF;
  INSERT INTO cronrun.runs (run_id, job, host, tick, fence, status, started_at, finished_at, wall_s,
                            exit_code, record, updated_at)
    VALUES (apply_record.run_id, v_job, v_host, v_tick, v_fence, v_status, (rec->>'started_at')::timestamptz,
            (rec->>'finished_at')::timestamptz, (rec->>'wall_s')::double precision,
            (rec->>'exit_code')::integer, rec, now());
  IF v_fence IS NOT NULL THEN
    INSERT INTO cronrun.job_fences AS f (job, fence, host, tick) VALUES (v_job, v_fence, v_host, v_tick)
      ON CONFLICT (job) DO UPDATE SET fence = excluded.fence, host = excluded.host, tick = excluded.tick
      WHERE f.fence < excluded.fence;
  END IF;
  outcome := 'stored';
END
$fn$;

-- One batch of journal records, newline-separated JSON lines, applied in order.
-- Text lines rather than one jsonb array: a single record PostgreSQL cannot hold
-- as jsonb (a \u0000 escape) would fail the cast of the whole array, and with it
-- the batch. First the whole batch in one subtransaction (the common case: one
-- subtransaction per batch, not per record); if any record raises, that is rolled
-- back and the batch applied again with each record in its own subtransaction,
-- so the one that fails becomes a dead letter and the others are stored.
CREATE FUNCTION cronrun.put_batch(p_host text, p_batch text)
RETURNS TABLE (ord integer, outcome text, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cronrun, pg_temp AS $fn$
DECLARE
  lines    text[] := CASE WHEN p_batch IS NULL OR p_batch = '' THEN '{}'::text[]
                          ELSE string_to_array(p_batch, E'\n') END;
  n        integer := coalesce(array_length(lines, 1), 0);
  outs     text[] := '{}';
  dets     text[] := '{}';
  r        record;
  i        integer;
  whole    boolean := true;
  v_payload text;
BEGIN
  INSERT INTO cronrun.hosts AS h (host, last_seen) VALUES (p_host, now())
    ON CONFLICT (host) DO UPDATE SET last_seen = excluded.last_seen;
  BEGIN
    FOR i IN 1 .. n LOOP
      SELECT * INTO r FROM cronrun.apply_record(p_host, lines[i]);
      outs[i] := r.outcome;
      dets[i] := r.detail;
    END LOOP;
  EXCEPTION WHEN OTHERS THEN
    whole := false;
  END;
  IF NOT whole THEN
    FOR i IN 1 .. n LOOP
      BEGIN
        SELECT * INTO r FROM cronrun.apply_record(p_host, lines[i]);
        outs[i] := r.outcome;
        dets[i] := r.detail;
      EXCEPTION WHEN OTHERS THEN
        outs[i] := 'dead';
        dets[i] := SQLERRM;
        v_payload := lines[i];
        BEGIN
          v_payload := lines[i]::jsonb::text;
        EXCEPTION WHEN OTHERS THEN
          NULL;  -- not JSON PostgreSQL can hold: kept as sent
        END;
        INSERT INTO cronrun.dead_letters (host, run_id, reason, payload)
          VALUES (p_host, substring(v_payload FROM '"run_id": ?"([^"]*)"'), dets[i], v_payload)
          ON CONFLICT (md5(payload)) DO NOTHING;
      END;
    END LOOP;
  END IF;
  FOR i IN 1 .. n LOOP
    ord := i;
    outcome := outs[i];
    detail := dets[i];
    RETURN NEXT;
  END LOOP;
END
$fn$;

-- A running row whose holder is gone (its lock no longer carries its fence).
CREATE FUNCTION cronrun.mark_lost(p_run_id text, p_fence bigint, p_note text)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = cronrun, pg_temp AS $fn$
  WITH changed AS (
    UPDATE cronrun.runs
       SET status = 'lost',
           record = jsonb_set(jsonb_set(record, '{status}', '"lost"'), '{fleet}',
                              coalesce(CASE WHEN jsonb_typeof(record->'fleet') = 'object' THEN record->'fleet' END,
                                       '{}'::jsonb) || jsonb_build_object('note', p_note)),
           updated_at = now()
     WHERE run_id = p_run_id AND fence = p_fence AND status = 'running'
    RETURNING 1)
  SELECT count(*) > 0 FROM changed
$fn$;

REVOKE ALL ON FUNCTION cronrun.apply_record(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION cronrun.put_batch(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION cronrun.mark_lost(text, bigint, text) FROM PUBLIC;
)sql",

    // 1 -> 2: put_batch set-based. v1 applied a batch one record at a time
    // (apply_record: a plpgsql call and four statements per record), which held the
    // forwarder to a few thousand records a second. Now a batch is parsed once into
    // an array and applied with one statement per table; apply_record stays as the
    // reference and the fallback: a batch with a record PostgreSQL cannot parse or
    // store (a poisoned record), or one where records of the batch depend on each
    // other beyond a start and finish of one run (two runs of one claimed tick,
    // one run whose tick changes), is applied per record as v1 did, so outcomes
    // and dead letters are the same whichever path a batch takes.
    R"sql(
-- Raises when a batch is not one put_batch_set can apply: content apply_record
-- refuses (n_bad: applied per record, for its dead letter) or records that depend
-- on each other (n_dep, SQLSTATE CRSEQ: applied in order).
CREATE FUNCTION cronrun.batch_check(n_bad bigint, n_dep bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = cronrun, pg_temp AS $fn$
BEGIN
  IF n_bad > 0 THEN
    RAISE EXCEPTION 'a record of the batch is not storable';
  END IF;
  IF n_dep > 0 THEN
    RAISE EXCEPTION 'records of the batch depend on each other' USING ERRCODE = 'CRSEQ';
  END IF;
  RETURN true;
END
$fn$;

-- The whole batch in one statement, with the outcomes apply_record would give
-- record by record. Not SECURITY DEFINER: only put_batch, running as the owner,
-- writes with it. Raises (the caller falls back, see put_batch) on a record it
-- cannot parse or store, and (CRSEQ) when records of the batch depend on each
-- other beyond a start and a finish of one run: a run whose records disagree on
-- its claimed tick, two runs of one claimed tick, a tick held by a lower fence
-- (the holder is superseded: a delete and an insert of the same key).
-- A statement's data-modifying parts see one snapshot, not each other's writes:
-- what a record finds is its run's row (locked) and its tick's holder (locked) as
-- they were, and the later records of the same run, computed here.
CREATE FUNCTION cronrun.put_batch_set(p_host text, lines text[])
RETURNS TABLE (ord integer, outcome text, detail text)
LANGUAGE sql SET search_path = cronrun, pg_temp AS $fn$
WITH
-- Each line parsed once (MATERIALIZED: inlined, the cast would run per use). A
-- cast that fails (not JSON, a bad time or fence, \u0000 in a string) raises.
d AS MATERIALIZED (
  SELECT l.ord::integer AS ord, l.line::jsonb AS doc
    FROM unnest(lines) WITH ORDINALITY AS l(line, ord)),
x AS MATERIALIZED (
  SELECT d.ord, d.doc->>'type' AS kind, d.doc->'record' AS rec FROM d),
it AS MATERIALIZED (
  SELECT x.ord, x.kind, x.rec, x.rec->>'run_id' AS run_id, x.rec->>'job' AS job,
         coalesce(nullif(f.fl->>'host', ''), nullif(x.rec->>'host', ''), p_host) AS host,
         (f.fl->>'tick')::timestamptz AS tick, (f.fl->>'fence')::bigint AS fence,
         CASE WHEN x.kind = 'start' THEN 'running' ELSE x.rec->>'status' END AS status,
         (x.rec->>'started_at')::timestamptz AS started_at, (x.rec->>'finished_at')::timestamptz AS finished_at,
         (x.rec->>'wall_s')::double precision AS wall_s, (x.rec->>'exit_code')::integer AS exit_code
    FROM x CROSS JOIN LATERAL (
      SELECT CASE WHEN jsonb_typeof(x.rec->'fleet') = 'object' THEN x.rec->'fleet' ELSE '{}'::jsonb END AS fl) f),
-- The batch's runs that are stored already, and the holders of its claimed ticks.
e AS MATERIALIZED (
  SELECT r.run_id, r.status, r.record FROM cronrun.runs r
   WHERE r.run_id IN (SELECT it.run_id FROM it) FOR UPDATE),
h AS MATERIALIZED (
  SELECT r.run_id, r.job, r.tick, r.fence, r.host FROM cronrun.runs r
   WHERE r.fence IS NOT NULL AND (r.job, r.tick) IN (SELECT it.job, it.tick FROM it WHERE it.fence IS NOT NULL)
     FOR UPDATE),
grp AS MATERIALIZED (  -- per run: its first record, its row, the row holding its tick
  SELECT f.run_id, f.ord AS first_ord, f.job, f.tick, f.fence, e.run_id IS NOT NULL AS found,
         e.status AS e_status, e.record AS e_record, h.run_id AS h_run_id, h.fence AS h_fence, h.host AS h_host
    FROM (SELECT DISTINCT ON (it.run_id) it.run_id, it.ord, it.job, it.tick, it.fence
            FROM it ORDER BY it.run_id, it.ord) f
    LEFT JOIN e ON e.run_id = f.run_id
    LEFT JOIN h ON e.run_id IS NULL AND f.fence IS NOT NULL AND h.job = f.job AND h.tick = f.tick),
ok AS MATERIALIZED (
  SELECT cronrun.batch_check(
    (SELECT count(*) FROM it
      WHERE it.kind IS NULL OR it.kind NOT IN ('start', 'finish')
         OR jsonb_typeof(it.rec) IS DISTINCT FROM 'object'
         OR coalesce(it.run_id, '') = '' OR coalesce(it.job, '') = '' OR it.started_at IS NULL
         OR (it.fence IS NOT NULL AND it.tick IS NULL)
         OR it.status IS NULL
         OR it.status NOT IN ('running', 'ok', 'failed', 'killed', 'timeout', 'oom', 'skipped', 'error', 'lost')),
    (SELECT count(*) FROM (SELECT 1 FROM it GROUP BY it.run_id
                            HAVING count(DISTINCT (it.job, it.tick, it.fence)) > 1) a)
    + (SELECT count(*) FROM (SELECT 1 FROM it WHERE it.fence IS NOT NULL GROUP BY it.job, it.tick
                              HAVING count(DISTINCT it.run_id) > 1) b)
    + (SELECT count(*) FROM grp WHERE NOT grp.found AND grp.h_fence < grp.fence)) AS ok),
seq AS (  -- each record with the last finish of its run before it
  SELECT it.ord, it.run_id, it.kind, it.rec,
         max(it.ord) FILTER (WHERE it.kind = 'finish')
           OVER (PARTITION BY it.run_id ORDER BY it.ord ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
           AS prev_finish
    FROM it),
outc AS (
  SELECT s.ord, s.run_id,
         CASE WHEN NOT g.found AND g.h_run_id IS NOT NULL THEN 'refused'
              WHEN NOT g.found AND s.ord = g.first_ord THEN 'stored'
              WHEN s.kind = 'start' THEN 'unchanged'
              WHEN coalesce(p.status, CASE WHEN g.found THEN g.e_status ELSE 'running' END) NOT IN ('running', 'lost')
                   AND coalesce(p.rec, g.e_record) = s.rec THEN 'unchanged'
              ELSE 'stored' END AS outcome,
         CASE WHEN NOT g.found AND g.h_run_id IS NOT NULL THEN
           format('stale fence: tick %s of job %s is held by fence %s (host %s, run %s); this record has fence %s',
                  to_char(g.tick AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), g.job,
                  g.h_fence, g.h_host, g.h_run_id, g.fence) END AS detail,
         NOT g.found AND s.ord = g.first_ord AND g.h_run_id IS NULL AS inserts
    FROM seq s
    JOIN grp g ON g.run_id = s.run_id
    LEFT JOIN it p ON p.ord = s.prev_finish),
fin AS MATERIALIZED (  -- a run's row is written from its last stored record
  SELECT o.*, o.ord = max(o.ord) FILTER (WHERE o.outcome = 'stored') OVER (PARTITION BY o.run_id) AS writes
    FROM outc o),
dead AS (  -- refused: set aside as sent
  INSERT INTO cronrun.dead_letters (host, run_id, reason, payload)
    SELECT p_host, fin.run_id, fin.detail, d.doc::text
      FROM fin JOIN d ON d.ord = fin.ord
     WHERE fin.outcome = 'refused' ORDER BY fin.ord
    ON CONFLICT (md5(payload)) DO NOTHING),
w AS (
  INSERT INTO cronrun.runs AS r (run_id, job, host, tick, fence, status, started_at, finished_at, wall_s,
                                 exit_code, record, updated_at)
    SELECT it.run_id, it.job, it.host, it.tick, it.fence, it.status, it.started_at, it.finished_at, it.wall_s,
           it.exit_code, it.rec, now()
      FROM fin JOIN it ON it.ord = fin.ord
     WHERE fin.writes ORDER BY fin.ord
    ON CONFLICT (run_id) DO UPDATE SET job = excluded.job, host = excluded.host, tick = excluded.tick,
           fence = excluded.fence, status = excluded.status, started_at = excluded.started_at,
           finished_at = excluded.finished_at, wall_s = excluded.wall_s, exit_code = excluded.exit_code,
           record = excluded.record, updated_at = excluded.updated_at),
jf AS (  -- the highest fence per job among the runs this batch inserted
  INSERT INTO cronrun.job_fences AS f (job, fence, host, tick)
    SELECT DISTINCT ON (it.job) it.job, it.fence, it.host, it.tick
      FROM fin JOIN it ON it.ord = fin.ord
     WHERE fin.inserts AND it.fence IS NOT NULL
     ORDER BY it.job, it.fence DESC, it.ord
    ON CONFLICT (job) DO UPDATE SET fence = excluded.fence, host = excluded.host, tick = excluded.tick
      WHERE f.fence < excluded.fence)
SELECT fin.ord, fin.outcome, fin.detail FROM fin CROSS JOIN ok WHERE ok.ok ORDER BY fin.ord
$fn$;

-- One batch of journal records, newline-separated JSON lines (text, not a jsonb
-- array: a record PostgreSQL cannot hold as jsonb must not fail the cast of the
-- whole batch), applied in order. First set-based (put_batch_set) in one
-- subtransaction; when that raises, records that depend on each other are applied
-- in order in one subtransaction, and a batch with a record that cannot be stored
-- one record per subtransaction, so that record becomes a dead letter and the
-- others are stored. A batch of a few records goes in order at once.
CREATE OR REPLACE FUNCTION cronrun.put_batch(p_host text, p_batch text)
RETURNS TABLE (ord integer, outcome text, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cronrun, pg_temp AS $fn$
DECLARE
  lines    text[] := CASE WHEN p_batch IS NULL OR p_batch = '' THEN '{}'::text[]
                          ELSE string_to_array(p_batch, E'\n') END;
  n        integer := coalesce(array_length(lines, 1), 0);
  outs     text[] := '{}';
  dets     text[] := '{}';
  r        record;
  i        integer;
  done     boolean := false;
  in_order boolean := false;
  v_payload text;
BEGIN
  INSERT INTO cronrun.hosts AS h (host, last_seen) VALUES (p_host, now())
    ON CONFLICT (host) DO UPDATE SET last_seen = excluded.last_seen;
  IF n = 0 THEN
    RETURN;
  END IF;
  -- A few records (the forwarder after one run sends two): planning the set
  -- statement costs more than applying them one by one.
  in_order := n < 16;
  IF NOT in_order THEN
    BEGIN
      SELECT array_agg(s.outcome ORDER BY s.ord), array_agg(s.detail ORDER BY s.ord) INTO outs, dets
        FROM cronrun.put_batch_set(p_host, lines) s;
      done := true;
    EXCEPTION WHEN SQLSTATE 'CRSEQ' THEN
      in_order := true;
    WHEN OTHERS THEN
      NULL;
    END;
  END IF;
  IF NOT done AND in_order THEN
    BEGIN
      FOR i IN 1 .. n LOOP
        SELECT * INTO r FROM cronrun.apply_record(p_host, lines[i]);
        outs[i] := r.outcome;
        dets[i] := r.detail;
      END LOOP;
      done := true;
    EXCEPTION WHEN OTHERS THEN
      NULL;
    END;
  END IF;
  IF NOT done THEN
    FOR i IN 1 .. n LOOP
      BEGIN
        SELECT * INTO r FROM cronrun.apply_record(p_host, lines[i]);
        outs[i] := r.outcome;
        dets[i] := r.detail;
      EXCEPTION WHEN OTHERS THEN
        outs[i] := 'dead';
        dets[i] := SQLERRM;
        v_payload := lines[i];
        BEGIN
          v_payload := lines[i]::jsonb::text;
        EXCEPTION WHEN OTHERS THEN
          NULL;  -- not JSON PostgreSQL can hold: kept as sent
        END;
        INSERT INTO cronrun.dead_letters (host, run_id, reason, payload)
          VALUES (p_host, substring(v_payload FROM '"run_id": ?"([^"]*)"'), dets[i], v_payload)
          ON CONFLICT (md5(payload)) DO NOTHING;
      END;
    END LOOP;
  END IF;
  RETURN QUERY SELECT o.i::integer, o.outcome, o.detail FROM unnest(outs, dets) WITH ORDINALITY AS o(outcome, detail, i);
END
$fn$;

REVOKE ALL ON FUNCTION cronrun.batch_check(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION cronrun.put_batch_set(text, text[]) FROM PUBLIC;
)sql",
};

}  // namespace cronrun::pg::schema
