-- The central history of a cronrun fleet (DESIGN.md section 10): the database, its
-- schema and three roles with least privilege. Run once as a PostgreSQL superuser:
--
--   psql -v owner_password="'...'" -v forward_password="'...'" -v read_password="'...'" \
--        -f contrib/fleet-role.sql
--
-- Roles (names and the database's can be changed with -v db=... -v owner=...
-- -v forward=... -v read=...):
--   cronrun_owner    owns the schema `cronrun`; the schema's tables and functions
--                    are created and migrated with its URI, once per cronrun upgrade
--                    that brings a new schema: `cronrun --flush` on one host with a
--                    fleet config whose `history` is the owner's URI.
--   cronrun_forward  the forwarders' role (`history` in every host's fleet.json):
--                    may only call cronrun.put_batch() and cronrun.mark_lost() (which
--                    run with the owner's rights and check every record) and read;
--                    it cannot insert, update, delete or alter anything directly.
--   cronrun_read     cronprof's role (`cronprof --history postgresql://...`): SELECT.
-- Then pg_hba.conf: let the hosts reach the database as cronrun_forward, the
-- people who run cronprof as cronrun_read (scram-sha-256).

\if :{?db}
\else
  \set db cronrun
\endif
\if :{?owner}
\else
  \set owner cronrun_owner
\endif
\if :{?forward}
\else
  \set forward cronrun_forward
\endif
\if :{?read}
\else
  \set read cronrun_read
\endif
\if :{?owner_password}
\else
  \set owner_password NULL
\endif
\if :{?forward_password}
\else
  \set forward_password NULL
\endif
\if :{?read_password}
\else
  \set read_password NULL
\endif

\set ON_ERROR_STOP on

CREATE ROLE :"owner" LOGIN PASSWORD :owner_password;
CREATE ROLE :"forward" LOGIN PASSWORD :forward_password;
CREATE ROLE :"read" LOGIN PASSWORD :read_password;
CREATE DATABASE :"db" OWNER :"owner";

\connect :"db"

-- Nobody else connects, and nobody creates objects in `public`.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"forward", :"read";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA cronrun AUTHORIZATION :"owner";
GRANT USAGE ON SCHEMA cronrun TO :"forward", :"read";

-- What the owner's migrations create later gets these grants as it is created.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA cronrun
  GRANT SELECT ON TABLES TO :"forward", :"read";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner"
  REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA cronrun
  GRANT EXECUTE ON FUNCTIONS TO :"forward";
