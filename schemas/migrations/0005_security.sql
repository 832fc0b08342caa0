-- 0005_security.sql — least privilege for the daemon and the people who read a node,
-- personal data kept at the commune by the database itself, and the audit trail.
--
-- Roles (cluster-wide; created here when missing, so the schema owner needs CREATEROLE,
-- or a DBA creates them first):
--   lienthong_daemon   the daemon's login role (per-node login roles may be its members).
--                      It may EXECUTE only the link functions the daemon calls, which are
--                      SECURITY DEFINER (they run as the schema owner, with a fixed
--                      search_path), SELECT lt.outbox and lt.upstream (link state it reads
--                      directly), and write its session's staging tables (lt.create_staging).
--                      It reads and writes no leaf table directly, and can never write
--                      lt.case_personal (a trigger refuses it even through a function).
--   lienthong_reader   officers' dashboards and reporting tools: SELECT on every table and
--                      view of schema lt except personal data (lt.case_personal and any view
--                      built on it); EXECUTE on the ordinary (SECURITY INVOKER) functions,
--                      which can do no more than the role itself, and on read-only (STABLE or
--                      IMMUTABLE) definer functions, which must therefore never return
--                      personal data. It writes nothing.
--   lienthong_officer  commune officers: what the reader has, plus lt.case_personal, plus
--                      EXECUTE on lt.put_value, lt.delete_value and lt.put_case (SECURITY
--                      DEFINER: they write only this node's own unit's rows).
-- The schema owner (the role that runs `lienthong init` / `migrate`) keeps everything else
-- and should not be a superuser. Grants are made by lt.apply_privileges(), which starts
-- from nothing each time and is idempotent: run `SELECT lt.apply_privileges()` as the
-- owner after adding objects to schema lt, or after re-creating the roles. A later
-- migration that adds a writing function for the daemon or for officers registers it in
-- lt.function_grant and calls lt.apply_privileges().
--
-- Personal data (names, guardians, addresses, phone numbers, notes) lives only in
-- lt.case_personal. It is absent from the wire (the codec has no such fields) and from
-- lt.outbox_read; the trigger lt.case_personal_guard makes the database refuse any write
-- to lt.case_personal on a node that is not a commune (so a district's or province's
-- table stays empty whatever arrives) and any write from a session of the daemon's role.
--
-- Audit: lt.audit gets one row for every change of a leaf row (lt.data_value,
-- lt.case_record) at every node: which row, the origin unit (the only unit that writes
-- it), the version stored and the one it replaced, when the origin wrote it and when this
-- node stored it, the link it came through ('local' or the child unit) and the login role
-- of the session. Statement-level triggers fill it with one INSERT ... SELECT per
-- statement. Rows are never updated; the owner may prune old ones (DELETE ... WHERE at < ...).

-- ---------------------------------------------------------------- roles
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['lienthong_daemon', 'lienthong_reader', 'lienthong_officer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s', r, CASE WHEN r = 'lienthong_daemon' THEN 'LOGIN' ELSE 'NOLOGIN' END);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN NULL; -- created meanwhile by another node's init
                WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'role % does not exist and % may not create it', r, current_user
                        USING HINT = 'create the roles lienthong_daemon (LOGIN), lienthong_reader and lienthong_officer as a DBA, or give the schema owner CREATEROLE';
            END;
        END IF;
    END LOOP;
END $$;

-- Is the role `who` lienthong_daemon or a member of it (directly or not)? Superusers
-- are not members for this purpose (pg_has_role would say they are).
CREATE FUNCTION lt.is_daemon_role(who name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = lt, pg_temp AS $$
    WITH RECURSIVE m(oid) AS (
        SELECT oid FROM pg_roles WHERE rolname = 'lienthong_daemon'
        UNION
        SELECT am.member FROM pg_auth_members am JOIN m ON am.roleid = m.oid)
    SELECT EXISTS (SELECT 1 FROM m JOIN pg_roles r ON r.oid = m.oid WHERE r.rolname = who)
$$;

-- ---------------------------------------------------------------- personal data
CREATE FUNCTION lt.case_personal_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = lt, pg_temp AS $$
DECLARE
    me text := (SELECT unit_code FROM lt.node);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lt.unit WHERE code = me AND level = 'commune') THEN
        RAISE EXCEPTION 'personal data stays at the commune: node % is not a commune, lt.case_personal is kept empty', me
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF lt.is_daemon_role(session_user) THEN
        RAISE EXCEPTION 'the daemon''s role (%) never writes personal data', session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER case_personal_guard BEFORE INSERT OR UPDATE ON lt.case_personal
    FOR EACH STATEMENT EXECUTE FUNCTION lt.case_personal_guard();

-- ---------------------------------------------------------------- audit
CREATE TABLE lt.audit (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),  -- when this node stored the change
    kind          text NOT NULL CHECK (kind IN ('value', 'case')),
    unit_code     text NOT NULL,                       -- origin: the unit the row belongs to
    element       text,                                -- a value's key ...
    period        text,
    disagg        text,
    case_id       uuid,                                -- ... or a case's
    action        text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),  -- delete: a tombstone
    version       bigint NOT NULL,                     -- the version now stored
    prev_version  bigint,                              -- the version it replaced; NULL for a new row
    changed_at    timestamptz NOT NULL,                -- when the origin unit wrote this version
    via           text NOT NULL,                       -- 'local' or the child unit it arrived from
    db_user       name NOT NULL DEFAULT session_user   -- the login role of the writing session
);
CREATE INDEX audit_by_unit ON lt.audit (unit_code, at);
CREATE INDEX audit_by_case ON lt.audit (case_id) WHERE case_id IS NOT NULL;

COMMENT ON TABLE lt.audit IS
    'Every change of a leaf row at this node: origin unit, version, when, via which link, by which login role';

-- SECURITY DEFINER: the audit row is written whoever caused the change.
CREATE FUNCTION lt.audit_data_value() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lt.audit (kind, unit_code, element, period, disagg, action, version, prev_version, changed_at, via)
        SELECT 'value', n.unit_code, n.element, n.period, n.disagg,
               CASE WHEN n.value IS NULL THEN 'delete' ELSE 'insert' END, n.version, NULL, n.changed_at, n.via
          FROM new_rows n;
    ELSE
        INSERT INTO lt.audit (kind, unit_code, element, period, disagg, action, version, prev_version, changed_at, via)
        SELECT 'value', n.unit_code, n.element, n.period, n.disagg,
               CASE WHEN n.value IS NULL THEN 'delete' ELSE 'update' END, n.version, o.version, n.changed_at, n.via
          FROM new_rows n JOIN old_rows o ON o.id = n.id;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION lt.audit_case_record() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lt.audit (kind, unit_code, case_id, action, version, prev_version, changed_at, via)
        SELECT 'case', n.unit_code, n.case_id,
               CASE WHEN n.deleted THEN 'delete' ELSE 'insert' END, n.version, NULL, n.changed_at, n.via
          FROM new_rows n;
    ELSE
        INSERT INTO lt.audit (kind, unit_code, case_id, action, version, prev_version, changed_at, via)
        SELECT 'case', n.unit_code, n.case_id,
               CASE WHEN n.deleted THEN 'delete' ELSE 'update' END, n.version, o.version, n.changed_at, n.via
          FROM new_rows n JOIN old_rows o ON o.id = n.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER data_value_audit_ins AFTER INSERT ON lt.data_value
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.audit_data_value();
CREATE TRIGGER data_value_audit_upd AFTER UPDATE ON lt.data_value
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.audit_data_value();
CREATE TRIGGER case_record_audit_ins AFTER INSERT ON lt.case_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.audit_case_record();
CREATE TRIGGER case_record_audit_upd AFTER UPDATE ON lt.case_record
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.audit_case_record();

CREATE FUNCTION lt.refuse_audit_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are never changed' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON lt.audit
    FOR EACH STATEMENT EXECUTE FUNCTION lt.refuse_audit_update();

-- ---------------------------------------------------------------- the daemon's staging tables
-- Created by the schema owner (this function is SECURITY DEFINER, below), so lt.apply_batch
-- may read and empty them; the daemon's session may fill and truncate them.
CREATE OR REPLACE FUNCTION lt.create_staging() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS stage_value (
        seq bigint, unit_code text, element text, period text, disagg text,
        value numeric, version bigint, changed_at timestamptz) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_case (
        seq bigint, case_id uuid, unit_code text, version bigint, changed_at timestamptz, deleted boolean,
        sex text, birth_ym text, ethnicity smallint, village_code text, categories int, status text,
        notified_at timestamptz, assessed_at timestamptz, emergency_at timestamptz,
        plan_drafted_at timestamptz, plan_approved_at timestamptz, reviewed_at timestamptz,
        closed_at timestamptz, services int) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_reject (seq bigint, code int, reason text, record jsonb) ON COMMIT DELETE ROWS;
    GRANT SELECT, INSERT, TRUNCATE ON pg_temp.stage_value, pg_temp.stage_case TO SESSION_USER;
END $$;

-- ---------------------------------------------------------------- definer functions
-- What the daemon calls (services/lienthongd: upstream.c, downstream.c, apply.c) and what
-- officers call: run as the owner, never by a search_path the caller controls.
ALTER FUNCTION lt.create_staging() SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.child_hello(text, bigint) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.apply_batch(text, bigint, bigint) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.quarantine(text, bigint, bigint, text, jsonb) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.children_seen(text[], double precision[]) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.outbox_read(bigint, int) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.outbox_high() SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.upstream_acked(bigint, text) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.upstream_rewound(bigint) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.upstream_state(text, text) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.put_value(text, text, text, text, numeric) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.delete_value(text, text, text, text) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.put_case(jsonb) SECURITY DEFINER SET search_path = lt, pg_temp;

-- ---------------------------------------------------------------- grants
-- The writing (SECURITY DEFINER, VOLATILE) functions each role may call; nobody else may.
CREATE TABLE lt.function_grant (
    role       text NOT NULL CHECK (role IN ('lienthong_daemon', 'lienthong_officer')),
    signature  text NOT NULL,   -- as regprocedure input: 'lt.put_value(text, text, text, text, numeric)'
    PRIMARY KEY (role, signature)
);
INSERT INTO lt.function_grant (role, signature) VALUES
    ('lienthong_daemon', 'lt.create_staging()'),
    ('lienthong_daemon', 'lt.child_hello(text, bigint)'),
    ('lienthong_daemon', 'lt.apply_batch(text, bigint, bigint)'),
    ('lienthong_daemon', 'lt.quarantine(text, bigint, bigint, text, jsonb)'),
    ('lienthong_daemon', 'lt.children_seen(text[], double precision[])'),
    ('lienthong_daemon', 'lt.outbox_read(bigint, int)'),
    ('lienthong_daemon', 'lt.outbox_high()'),
    ('lienthong_daemon', 'lt.upstream_acked(bigint, text)'),
    ('lienthong_daemon', 'lt.upstream_rewound(bigint)'),
    ('lienthong_daemon', 'lt.upstream_state(text, text)'),
    ('lienthong_officer', 'lt.put_value(text, text, text, text, numeric)'),
    ('lienthong_officer', 'lt.delete_value(text, text, text, text)'),
    ('lienthong_officer', 'lt.put_case(jsonb)');

-- From nothing to exactly the privileges above, every time it runs.
CREATE FUNCTION lt.apply_privileges() RETURNS void
LANGUAGE plpgsql SET search_path = lt, pg_temp AS $$
DECLARE
    f regprocedure;
    t record;
BEGIN
    REVOKE ALL ON SCHEMA lt FROM PUBLIC, lienthong_daemon, lienthong_reader, lienthong_officer;
    REVOKE ALL ON ALL TABLES IN SCHEMA lt FROM PUBLIC, lienthong_daemon, lienthong_reader, lienthong_officer;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA lt FROM PUBLIC, lienthong_daemon, lienthong_reader, lienthong_officer;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA lt FROM PUBLIC, lienthong_daemon, lienthong_reader, lienthong_officer;
    GRANT USAGE ON SCHEMA lt TO lienthong_daemon, lienthong_reader, lienthong_officer;
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO lienthong_daemon', current_database());

    -- the daemon reads two tables directly; its functions are in lt.function_grant
    GRANT SELECT ON lt.outbox, lt.upstream TO lienthong_daemon;

    -- officers and readers: every relation, minus personal data for readers
    FOR t IN
        WITH RECURSIVE personal(oid) AS (
            SELECT 'lt.case_personal'::regclass::oid
            UNION
            SELECT r.ev_class
              FROM pg_depend d
              JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
              JOIN personal p ON d.refclassid = 'pg_class'::regclass AND d.refobjid = p.oid
             WHERE r.ev_class <> p.oid)
        SELECT c.oid::regclass AS rel, c.oid IN (SELECT oid FROM personal) AS personal
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'lt' AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO lienthong_officer', t.rel);
        IF NOT t.personal THEN
            EXECUTE format('GRANT SELECT ON %s TO lienthong_reader', t.rel);
        END IF;
    END LOOP;

    -- ordinary functions can do no more than their caller, and read-only (STABLE or
    -- IMMUTABLE) definer functions cannot write; writing definer functions only as listed
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'lt' AND (NOT p.prosecdef OR p.provolatile <> 'v') AND p.prokind IN ('f', 'a', 'w')
           AND p.prorettype <> 'trigger'::regtype AND p.oid <> 'lt.apply_privileges()'::regprocedure
           AND p.oid NOT IN (SELECT to_regprocedure(g.signature) FROM lt.function_grant g
                              WHERE g.role = 'lienthong_daemon' AND to_regprocedure(g.signature) IS NOT NULL)
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO lienthong_reader, lienthong_officer', f);
    END LOOP;
    FOR t IN SELECT g.role, g.signature, to_regprocedure(g.signature) AS fn FROM lt.function_grant g LOOP
        IF t.fn IS NULL THEN
            RAISE WARNING 'lt.function_grant names a function that does not exist: %', t.signature;
        ELSE
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', t.fn, t.role);
        END IF;
    END LOOP;
END $$;

SELECT lt.apply_privileges();
