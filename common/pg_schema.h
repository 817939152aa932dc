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

#include "common/pg_history.h"

namespace cronrun::pg::schema {

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

-- One batch of journal records, newline-separated JSON lines
-- {"type": "start"|"finish", "record": {...}}, applied in order. Each record runs
-- in its own subtransaction (the inner BEGIN ... EXCEPTION block), so one that
-- fails (bad JSON, a field of the wrong type, a constraint) becomes a dead letter
-- and the others are stored. Text lines rather than one jsonb array: a single
-- record PostgreSQL cannot hold as jsonb (a \u0000 escape) would fail the cast of
-- the whole array, and with it the batch.
CREATE FUNCTION cronrun.put_batch(p_host text, p_batch text)
RETURNS TABLE (ord integer, outcome text, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = cronrun, pg_temp AS $fn$
DECLARE
  lines    text[] := CASE WHEN p_batch IS NULL OR p_batch = '' THEN '{}'::text[]
                          ELSE string_to_array(p_batch, E'\n') END;
  i        integer;
  doc      jsonb;
  rec      jsonb;
  fl       jsonb;
  v_payload text;
  v_type   text;
  v_run_id text;
  v_job    text;
  v_host   text;
  v_tick   timestamptz;
  v_fence  bigint;
  v_status text;
  cur      cronrun.runs%ROWTYPE;
  holder   cronrun.runs%ROWTYPE;
BEGIN
  INSERT INTO cronrun.hosts AS h (host, last_seen) VALUES (p_host, now())
    ON CONFLICT (host) DO UPDATE SET last_seen = excluded.last_seen;
  FOR i IN 1 .. coalesce(array_length(lines, 1), 0) LOOP
    ord := i;
    detail := NULL;
    doc := NULL;
    v_run_id := NULL;
    v_payload := lines[i];
    BEGIN
      doc := lines[i]::jsonb;
      v_payload := doc::text;
      v_type := doc->>'type';
      rec := doc->'record';
      IF v_type IS NULL OR v_type NOT IN ('start', 'finish') THEN
        RAISE EXCEPTION 'record type is %, not start or finish', coalesce(v_type, 'missing');
      END IF;
      IF jsonb_typeof(rec) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'no run record object';
      END IF;
      v_run_id := rec->>'run_id';
      v_job := rec->>'job';
      IF coalesce(v_run_id, '') = '' THEN RAISE EXCEPTION 'run_id missing'; END IF;
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

      SELECT * INTO cur FROM cronrun.runs WHERE run_id = v_run_id FOR UPDATE;
      IF FOUND THEN
        IF v_type = 'start' OR (cur.status NOT IN ('running', 'lost') AND cur.record = rec) THEN
          outcome := 'unchanged';
        ELSE
          UPDATE cronrun.runs SET job = v_job, host = v_host, tick = v_tick, fence = v_fence,
                 status = v_status, started_at = (rec->>'started_at')::timestamptz,
                 finished_at = (rec->>'finished_at')::timestamptz, wall_s = (rec->>'wall_s')::double precision,
                 exit_code = (rec->>'exit_code')::integer, record = rec, updated_at = now()
           WHERE run_id = v_run_id;
          outcome := 'stored';
        END IF;
      ELSE
        IF v_fence IS NOT NULL THEN
          SELECT * INTO holder FROM cronrun.runs WHERE job = v_job AND tick = v_tick AND fence IS NOT NULL FOR UPDATE;
          IF FOUND THEN
            IF holder.fence >= v_fence THEN
              detail := format('stale fence: tick %s of job %s is held by fence %s (host %s, run %s); this record has fence %s',
                               to_char(v_tick AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), v_job,
                               holder.fence, holder.host, holder.run_id, v_fence);
              INSERT INTO cronrun.dead_letters (host, run_id, reason, payload)
                VALUES (p_host, v_run_id, detail, v_payload) ON CONFLICT (md5(payload)) DO NOTHING;
              outcome := 'refused';
              RETURN NEXT;
              CONTINUE;
            END IF;
            -- The row holding the tick is the stale one: a newer holder claimed it.
            INSERT INTO cronrun.dead_letters (host, run_id, reason, payload)
              VALUES (holder.host, holder.run_id,
                      format('stale fence: superseded by fence %s (host %s, run %s)', v_fence, v_host, v_run_id),
                      jsonb_build_object('type', CASE WHEN holder.status = 'running' THEN 'start' ELSE 'finish' END,
                                         'record', holder.record)::text)
              ON CONFLICT (md5(payload)) DO NOTHING;
            DELETE FROM cronrun.runs WHERE run_id = holder.run_id;
          END IF;
        END IF;
        INSERT INTO cronrun.runs (run_id, job, host, tick, fence, status, started_at, finished_at, wall_s,
                                  exit_code, record, updated_at)
          VALUES (v_run_id, v_job, v_host, v_tick, v_fence, v_status, (rec->>'started_at')::timestamptz,
                  (rec->>'finished_at')::timestamptz, (rec->>'wall_s')::double precision,
                  (rec->>'exit_code')::integer, rec, now());
        IF v_fence IS NOT NULL THEN
          INSERT INTO cronrun.job_fences AS f (job, fence, host, tick) VALUES (v_job, v_fence, v_host, v_tick)
            ON CONFLICT (job) DO UPDATE SET fence = excluded.fence, host = excluded.host, tick = excluded.tick
            WHERE f.fence < excluded.fence;
        END IF;
        outcome := 'stored';
      END IF;
    EXCEPTION WHEN OTHERS THEN
      outcome := 'dead';
      detail := SQLERRM;
      INSERT INTO cronrun.dead_letters (host, run_id, reason, payload)
        VALUES (p_host, v_run_id, detail, v_payload) ON CONFLICT (md5(payload)) DO NOTHING;
    END;
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

REVOKE ALL ON FUNCTION cronrun.put_batch(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION cronrun.mark_lost(text, bigint, text) FROM PUBLIC;
)sql",
};

}  // namespace cronrun::pg::schema
