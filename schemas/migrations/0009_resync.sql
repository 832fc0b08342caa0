-- 0009_resync.sql — a restored node is recognised by what it sent, not only by how far
-- its sequence got, and its full resync replaces what the levels above hold for it.
--
-- Detection. Every outbox row gets a random token. A BATCH carries the token of its
-- last row; the parent keeps it with the child's position and returns it in WELCOME.
-- A child whose own row at that position has another token (or none) is not the
-- database that sent it: it was restored from a backup and has written since, past
-- the parent's position, which positions alone cannot show. Without this, the ACK of
-- that position would delete rows the parent never received.
--
-- Resolution. The rewound child sends every leaf row it holds between two markers
-- (outbox kind 4, wire record kind 4) naming its unit. At BEGIN the parent sets aside
-- every value and case it holds for that subtree (lt.resync_held; the roll-ups follow);
-- the resync puts back what the child still has; at END what did not come back at the
-- same or a newer version stays set aside and is reported on the child's link: rows
-- the restored node lost, kept for the operator and no longer counted. A node with a
-- parent forwards both markers in its own stream, so every level above does the same.
-- Submissions are not replaced: the newer version wins as always, and decisions flow
-- down again with the metadata.

ALTER TABLE lt.outbox ADD COLUMN token bigint NOT NULL DEFAULT (1 + floor(random() * 9.2e18))::bigint;
ALTER TABLE lt.outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE lt.outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN (1, 2, 3, 4));   -- 4: resync marker

-- The markers a node put in its outbox (its own resync, or one it forwards).
CREATE TABLE lt.resync_mark (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    unit_code  text NOT NULL,                                 -- the subtree resynced
    phase      smallint NOT NULL CHECK (phase IN (1, 2)),     -- 1 begin, 2 end
    made_at    timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE lt.child_link
    ADD COLUMN last_token   bigint NOT NULL DEFAULT 0,   -- the child's token at last_applied_seq; 0 unknown
    ADD COLUMN resyncs      bigint NOT NULL DEFAULT 0,   -- full resyncs received over this link
    ADD COLUMN resync_unit  text,                        -- a resync of this subtree is under way
    ADD COLUMN held_rows    bigint NOT NULL DEFAULT 0;   -- rows set aside by finished resyncs

ALTER TABLE lt.upstream
    ADD COLUMN last_resync     text,          -- why this node last resent everything
    ADD COLUMN last_resync_at  timestamptz;

-- Rows a parent held for a resyncing subtree. outcome NULL: the resync is under way;
-- 'missing': the child no longer has the row; 'older': it has an older version.
CREATE TABLE lt.resync_held (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    child_unit   text NOT NULL,        -- the link the resync came over
    resync_unit  text NOT NULL,        -- the unit that resynced
    begin_seq    bigint NOT NULL,      -- the child's seq of the BEGIN marker
    kind         text NOT NULL CHECK (kind IN ('value', 'case')),
    unit_code    text NOT NULL,
    key          text NOT NULL,        -- element/period/disagg, or the case id
    version      bigint NOT NULL,
    held_row     jsonb NOT NULL,       -- the row as this node held it
    held_at      timestamptz NOT NULL DEFAULT now(),
    outcome      text CHECK (outcome IN ('missing', 'older'))
);
CREATE INDEX resync_held_open ON lt.resync_held (child_unit, resync_unit) WHERE outcome IS NULL;
COMMENT ON TABLE lt.resync_held IS
    'Rows a restored child no longer has (or has only in an older version): set aside by its full resync, not counted';

ALTER TABLE lt.audit DROP CONSTRAINT audit_action_check;
ALTER TABLE lt.audit ADD CONSTRAINT audit_action_check
    CHECK (action IN ('insert', 'update', 'delete', 'set aside'));

-- ---------------------------------------------------------------- removing leaf rows
-- Leaf rows are still never deleted, except by a resync's BEGIN (lt.resync_marker),
-- which sets lt.resync_set_aside for its own transaction.
CREATE OR REPLACE FUNCTION lt.refuse_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME IN ('data_value', 'case_record') AND current_setting('lt.resync_set_aside', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'rows of % are never deleted; write a tombstone (lt.delete_value / deleted case) instead', TG_TABLE_NAME
        USING ERRCODE = 'check_violation';
END $$;

-- The roll-ups of removed rows, as the insert and update triggers of 0002 do it.
CREATE FUNCTION lt.data_value_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lt.rollup_value AS r (unit_code, element, period, disagg, total, n_rows, updated_at)
    SELECT p.ancestor, d.element, d.period, d.disagg, -sum(d.value), -count(*), now()
      FROM old_rows d
      JOIN lt.rollup_path p ON p.descendant = d.unit_code
                           AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
     WHERE d.value IS NOT NULL
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (unit_code, element, period, disagg) DO UPDATE
       SET total = trim_scale(r.total + EXCLUDED.total),
           n_rows = r.n_rows + EXCLUDED.n_rows,
           updated_at = EXCLUDED.updated_at;
    RETURN NULL;
END $$;

CREATE FUNCTION lt.case_record_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lt.rollup_case AS r (unit_code, period, category, status, n, updated_at)
    SELECT p.ancestor, d.period, g.category, d.status, -count(*), now()
      FROM old_rows d
      JOIN lt.rollup_path p ON p.descendant = d.unit_code
                           AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
      JOIN LATERAL (SELECT 0 AS category
                    UNION ALL
                    SELECT b + 1 FROM generate_series(0, 16) b
                     WHERE d.categories & (1 << b) <> 0) g ON true
     WHERE NOT d.deleted
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (unit_code, period, category, status) DO UPDATE
       SET n = r.n + EXCLUDED.n, updated_at = EXCLUDED.updated_at;
    RETURN NULL;
END $$;

CREATE TRIGGER data_value_gone AFTER DELETE ON lt.data_value
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.data_value_removed();
CREATE TRIGGER case_record_gone AFTER DELETE ON lt.case_record
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.case_record_removed();

-- ---------------------------------------------------------------- child side
-- The next records to send, now with each row's token and the resync markers
-- (unit_code and phase). Rows whose leaf row a resync set aside are skipped: the
-- marker that set them aside travels in their place.
DROP FUNCTION lt.outbox_read(bigint, int);
CREATE FUNCTION lt.outbox_read(p_after bigint, p_limit int)
RETURNS TABLE (
    seq bigint, kind smallint,
    unit_code text, element text, period text, disagg text, value text, version bigint, changed_ms bigint,
    case_id uuid, deleted boolean, sex text, birth_ym text, ethnicity smallint, village_code text,
    categories int, status text, notified_ms bigint, assessed_ms bigint, emergency_ms bigint,
    plan_drafted_ms bigint, plan_approved_ms bigint, reviewed_ms bigint, closed_ms bigint, services int,
    data_set text, submitted_ms bigint, first_submitted_ms bigint, decided_by text, decided_ms bigint,
    reason text, token bigint, phase smallint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = lt, pg_temp AS $$
    SELECT o.seq, o.kind,
           coalesce(d.unit_code, c.unit_code, s.unit_code, m.unit_code), d.element, coalesce(d.period, s.period),
           d.disagg, d.value::text,
           coalesce(d.version, c.version, s.version),
           (extract(epoch FROM coalesce(d.changed_at, c.changed_at, s.submitted_at)) * 1000)::bigint,
           c.case_id, c.deleted, c.sex, c.birth_ym, c.ethnicity, c.village_code, c.categories,
           coalesce(c.status, s.status),
           (extract(epoch FROM c.notified_at) * 1000)::bigint,
           (extract(epoch FROM c.assessed_at) * 1000)::bigint,
           (extract(epoch FROM c.emergency_at) * 1000)::bigint,
           (extract(epoch FROM c.plan_drafted_at) * 1000)::bigint,
           (extract(epoch FROM c.plan_approved_at) * 1000)::bigint,
           (extract(epoch FROM c.reviewed_at) * 1000)::bigint,
           (extract(epoch FROM c.closed_at) * 1000)::bigint,
           c.services,
           s.data_set,
           (extract(epoch FROM s.submitted_at) * 1000)::bigint,
           (extract(epoch FROM s.first_submitted_at) * 1000)::bigint,
           s.decided_by,
           (extract(epoch FROM s.decided_at) * 1000)::bigint,
           s.reason,
           o.token, m.phase
      FROM lt.outbox o
      LEFT JOIN lt.data_value d ON o.kind = 1 AND d.id = o.row_id
      LEFT JOIN lt.case_record c ON o.kind = 2 AND c.id = o.row_id
      LEFT JOIN lt.submission s ON o.kind = 3 AND s.id = o.row_id
      LEFT JOIN lt.resync_mark m ON o.kind = 4 AND m.id = o.row_id
     WHERE o.seq > p_after
       AND coalesce(d.id, c.id, s.id, m.id) IS NOT NULL
     ORDER BY o.seq
     LIMIT p_limit
$$;

-- Queue a resync marker for unit in this node's outbox (its own resync, or a child's
-- it forwards).
CREATE FUNCTION lt.queue_resync_mark(p_unit text, p_phase int) RETURNS void
LANGUAGE sql AS $$
    WITH m AS (INSERT INTO lt.resync_mark (unit_code, phase) VALUES (p_unit, p_phase) RETURNING id)
    INSERT INTO lt.outbox (kind, row_id) SELECT 4, id FROM m;
    SELECT pg_notify('lt_outbox', '');
$$;

-- The positions disagreed (see lt.upstream_welcome): resend everything after the
-- parent's position, between resync markers, and keep the reason.
DROP FUNCTION lt.upstream_rewound(bigint);
DELETE FROM lt.function_grant WHERE signature = 'lt.upstream_rewound(bigint)';
CREATE FUNCTION lt.upstream_rewound(p_parent_seq bigint, p_reason text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    high bigint := lt.outbox_high();
    me text := (SELECT unit_code FROM lt.node);
    n bigint;
BEGIN
    PERFORM lt.writer_lock();
    DELETE FROM lt.outbox;
    IF p_parent_seq > high THEN
        PERFORM setval('lt.outbox_seq_seq', p_parent_seq, true);
    END IF;
    PERFORM lt.queue_resync_mark(me, 1);
    n := lt.requeue_all();
    PERFORM lt.queue_resync_mark(me, 2);
    UPDATE lt.upstream
       SET acked_seq = p_parent_seq, last_error = p_reason, last_resync = p_reason, last_resync_at = now(),
           updated_at = now();
    RETURN n;
END $$;

-- Child side: the parent's WELCOME(resume after p_resume, token p_token). In one
-- transaction, with writers held off: either the parent's position is this database's
-- ('resume': forget what it confirmed), or it is not ('rewound': a full resync is
-- queued). Result: (action, reason, rows: outbox rows left | rows queued).
CREATE FUNCTION lt.upstream_welcome(p_resume bigint, p_token bigint, p_parent text)
RETURNS TABLE (action text, reason text, n bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
DECLARE
    high bigint;
    acked bigint;
    mine bigint;
    why text;
BEGIN
    PERFORM lt.writer_lock();
    high := lt.outbox_high();
    SELECT u.acked_seq INTO acked FROM lt.upstream u;
    IF p_resume > high THEN
        why := format('parent %s has applied up to seq %s, this node issued only %s: this database was restored '
                      'from an older backup', p_parent, p_resume, high);
    ELSIF p_resume < acked THEN
        why := format('parent %s has applied up to seq %s but had confirmed %s: the parent lost rows it had confirmed',
                      p_parent, p_resume, acked);
    ELSIF p_resume > acked AND p_token <> 0 THEN
        SELECT o.token INTO mine FROM lt.outbox o WHERE o.seq = p_resume;
        IF mine IS DISTINCT FROM p_token THEN
            why := format('the record parent %s applied at seq %s is not this node''s record at that seq: this database '
                          'was restored from an older backup and has written since', p_parent, p_resume);
        END IF;
    END IF;
    IF why IS NULL THEN
        RETURN QUERY SELECT 'resume'::text, NULL::text, lt.upstream_acked(p_resume, p_parent);
    ELSE
        RETURN QUERY SELECT 'rewound'::text, why, lt.upstream_rewound(p_resume, why);
    END IF;
END $$;

-- ---------------------------------------------------------------- parent side
-- HELLO: the child's resume point and the token the parent holds for it.
CREATE FUNCTION lt.child_welcome(p_child text, p_child_max bigint)
RETURNS TABLE (resume bigint, token bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
    SELECT r, coalesce((SELECT l.last_token FROM lt.child_link l WHERE l.child_unit = p_child), 0)
      FROM lt.child_hello(p_child, p_child_max) r
$$;

-- A quarantined record moves the position to a seq whose token this node never saw.
CREATE OR REPLACE FUNCTION lt.quarantine(p_child text, p_prev bigint, p_seq bigint, p_reason text, p_record jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
DECLARE
    last_applied bigint;
BEGIN
    PERFORM lt.writer_lock();
    SELECT last_applied_seq INTO last_applied FROM lt.child_link WHERE child_unit = p_child FOR UPDATE;
    IF p_seq <= last_applied THEN
        RETURN last_applied;
    END IF;
    IF p_prev > last_applied THEN
        RAISE EXCEPTION 'gap: % > %', p_prev, last_applied;
    END IF;
    INSERT INTO lt.rejected_delta (child_unit, seq, code, reason, record)
    VALUES (p_child, p_seq, 8, p_reason, p_record);
    UPDATE lt.child_link
       SET last_applied_seq = p_seq, last_token = 0, rejected_rows = rejected_rows + 1, last_error = p_reason
     WHERE child_unit = p_child;
    RETURN p_seq;
END $$;

-- A resync marker from child p_child at seq p_seq for subtree p_unit, applied after
-- the records before it. Returns NULL, or the reason it was refused.
CREATE FUNCTION lt.resync_marker(p_child text, p_seq bigint, p_unit text, p_phase int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    n_held bigint;
    n_missing bigint;
    n_older bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lt.unit_ancestor a WHERE a.descendant = p_unit AND a.ancestor = p_child) THEN
        RETURN format('resync marker for unit %s, which is not inside the subtree of %s', p_unit, p_child);
    END IF;
    IF p_phase = 1 THEN
        PERFORM set_config('lt.resync_set_aside', 'on', true);
        WITH gone AS (
            DELETE FROM lt.data_value d
             WHERE EXISTS (SELECT 1 FROM lt.unit_ancestor a
                            WHERE a.descendant = d.unit_code AND a.ancestor = p_unit
                              AND d.ref_date >= a.valid_from AND d.ref_date < a.valid_to)
            RETURNING d.*),
        held AS (
            INSERT INTO lt.resync_held (child_unit, resync_unit, begin_seq, kind, unit_code, key, version, held_row)
            SELECT p_child, p_unit, p_seq, 'value', g.unit_code, concat_ws('/', g.element, g.period, g.disagg),
                   g.version, to_jsonb(g)
              FROM gone g)
        INSERT INTO lt.audit (kind, unit_code, element, period, disagg, action, version, prev_version, changed_at, via)
        SELECT 'value', g.unit_code, g.element, g.period, g.disagg, 'set aside', g.version, g.version, g.changed_at, p_child
          FROM gone g;
        WITH gone AS (
            DELETE FROM lt.case_record c
             WHERE EXISTS (SELECT 1 FROM lt.unit_ancestor a
                            WHERE a.descendant = c.unit_code AND a.ancestor = p_unit
                              AND c.ref_date >= a.valid_from AND c.ref_date < a.valid_to)
            RETURNING c.*),
        held AS (
            INSERT INTO lt.resync_held (child_unit, resync_unit, begin_seq, kind, unit_code, key, version, held_row)
            SELECT p_child, p_unit, p_seq, 'case', g.unit_code, g.case_id::text, g.version, to_jsonb(g)
              FROM gone g)
        INSERT INTO lt.audit (kind, unit_code, case_id, action, version, prev_version, changed_at, via)
        SELECT 'case', g.unit_code, g.case_id, 'set aside', g.version, g.version, g.changed_at, p_child
          FROM gone g;
        PERFORM set_config('lt.resync_set_aside', 'off', true);
        SELECT count(*) INTO n_held FROM lt.resync_held h
         WHERE h.child_unit = p_child AND h.resync_unit = p_unit AND h.outcome IS NULL;
        UPDATE lt.child_link
           SET resync_unit = p_unit, resyncs = resyncs + 1,
               last_error = format('full resync of %s under way since its seq %s: %s rows held here until it ends',
                                   p_unit, p_seq, n_held)
         WHERE child_unit = p_child;
    ELSE
        -- what came back at the same or a newer version was not lost
        DELETE FROM lt.resync_held h
         WHERE h.child_unit = p_child AND h.resync_unit = p_unit AND h.outcome IS NULL
           AND CASE h.kind
               WHEN 'value' THEN EXISTS (SELECT 1 FROM lt.data_value d
                                          WHERE d.unit_code = h.unit_code AND d.element = h.held_row ->> 'element'
                                            AND d.period = h.held_row ->> 'period' AND d.disagg = h.held_row ->> 'disagg'
                                            AND d.version >= h.version)
               ELSE EXISTS (SELECT 1 FROM lt.case_record c
                             WHERE c.case_id = (h.held_row ->> 'case_id')::uuid AND c.version >= h.version)
               END;
        WITH marked AS (
        UPDATE lt.resync_held h
           SET outcome = CASE h.kind
               WHEN 'value' THEN CASE WHEN EXISTS (SELECT 1 FROM lt.data_value d
                                                    WHERE d.unit_code = h.unit_code AND d.element = h.held_row ->> 'element'
                                                      AND d.period = h.held_row ->> 'period'
                                                      AND d.disagg = h.held_row ->> 'disagg')
                                      THEN 'older' ELSE 'missing' END
               ELSE CASE WHEN EXISTS (SELECT 1 FROM lt.case_record c WHERE c.case_id = (h.held_row ->> 'case_id')::uuid)
                         THEN 'older' ELSE 'missing' END
               END
         WHERE h.child_unit = p_child AND h.resync_unit = p_unit AND h.outcome IS NULL
        RETURNING h.outcome)
        SELECT count(*) FILTER (WHERE m.outcome = 'missing'), count(*) FILTER (WHERE m.outcome = 'older')
          INTO n_missing, n_older
          FROM marked m;
        UPDATE lt.child_link
           SET resync_unit = NULL,
               held_rows = (SELECT count(*) FROM lt.resync_held h WHERE h.child_unit = p_child),
               last_error = format('full resync of %s ended: %s rows it no longer has and %s it has only '
                                   'in an older version are set aside in lt.resync_held, not counted',
                                   p_unit, n_missing, n_older)
         WHERE child_unit = p_child;
    END IF;
    IF (SELECT has_parent FROM lt.node) THEN
        PERFORM lt.queue_resync_mark(p_unit, p_phase);
    END IF;
    RETURN NULL;
END $$;

-- One batch of a child: lt.apply_batch, then what the batch's last record adds when
-- the batch moved the child's position: the child's token for it, and a resync
-- marker's work. Result rows as lt.apply_batch's (a refused marker is a 'reject').
CREATE FUNCTION lt.apply_link_batch(p_child text, p_prev bigint, p_last bigint, p_token bigint,
                                    p_mark_unit text, p_mark_phase int)
RETURNS TABLE (kind text, seq bigint, n bigint, code int, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
DECLARE
    r record;
    moved boolean := false;
    refused text;
BEGIN
    FOR r IN SELECT * FROM lt.apply_batch(p_child, p_prev, p_last) LOOP
        moved := moved OR (r.kind = 'summary' AND r.reason = 'applied');
        kind := r.kind;
        seq := r.seq;
        n := r.n;
        code := r.code;
        reason := r.reason;
        RETURN NEXT;
    END LOOP;
    IF moved THEN
        UPDATE lt.child_link l SET last_token = p_token WHERE l.child_unit = p_child;
        IF p_mark_unit IS NOT NULL THEN
            refused := lt.resync_marker(p_child, p_last, p_mark_unit, p_mark_phase);
            IF refused IS NOT NULL THEN
                INSERT INTO lt.rejected_delta (child_unit, seq, code, reason, record)
                VALUES (p_child, p_last, 7, refused, jsonb_build_object('unit', p_mark_unit, 'phase', p_mark_phase));
                kind := 'reject';
                seq := p_last;
                n := 0;
                code := 7;
                reason := refused;
                RETURN NEXT;
            END IF;
        END IF;
    END IF;
END $$;

-- ---------------------------------------------------------------- verify
-- Outbox rows whose leaf row a resync set aside are expected, not a fault.
CREATE OR REPLACE FUNCTION lt.verify()
RETURNS TABLE (what text, unit_code text, key text, maintained text, recomputed text)
LANGUAGE sql STABLE AS $$
    WITH fresh_v AS (
        SELECT p.ancestor AS unit_code, d.element, d.period, d.disagg, sum(d.value) AS total, count(*) AS n
          FROM lt.data_value d
          JOIN lt.rollup_path p ON p.descendant = d.unit_code
                               AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
         WHERE d.value IS NOT NULL
         GROUP BY 1, 2, 3, 4),
    kept_v AS (SELECT * FROM lt.rollup_value WHERE n_rows <> 0 OR total <> 0),
    fresh_c AS (
        SELECT p.ancestor AS unit_code, d.period, g.category, d.status, count(*) AS n
          FROM lt.case_record d
          JOIN lt.rollup_path p ON p.descendant = d.unit_code
                               AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
          JOIN LATERAL (SELECT 0 AS category UNION ALL
                        SELECT b + 1 FROM generate_series(0, 16) b WHERE d.categories & (1 << b) <> 0) g ON true
         WHERE NOT d.deleted
         GROUP BY 1, 2, 3, 4),
    kept_c AS (SELECT * FROM lt.rollup_case WHERE n <> 0)
    SELECT 'value', coalesce(f.unit_code, k.unit_code),
           concat_ws('/', coalesce(f.element, k.element), coalesce(f.period, k.period), coalesce(f.disagg, k.disagg)),
           k.total::text || ' (' || k.n_rows || ' rows)', f.total::text || ' (' || f.n || ' rows)'
      FROM fresh_v f FULL JOIN kept_v k
        ON (f.unit_code, f.element, f.period, f.disagg) = (k.unit_code, k.element, k.period, k.disagg)
     WHERE f.total IS DISTINCT FROM k.total OR f.n IS DISTINCT FROM k.n_rows
    UNION ALL
    SELECT 'case', coalesce(f.unit_code, k.unit_code),
           concat_ws('/', coalesce(f.period, k.period), coalesce(f.category, k.category), coalesce(f.status, k.status)),
           k.n::text, f.n::text
      FROM fresh_c f FULL JOIN kept_c k
        ON (f.unit_code, f.period, f.category, f.status) = (k.unit_code, k.period, k.category, k.status)
     WHERE f.n IS DISTINCT FROM k.n
    UNION ALL
    SELECT 'outbox', NULL, o.seq::text, 'row ' || o.row_id, 'missing'
      FROM lt.outbox o
     WHERE ((o.kind = 1 AND NOT EXISTS (SELECT 1 FROM lt.data_value d WHERE d.id = o.row_id))
         OR (o.kind = 2 AND NOT EXISTS (SELECT 1 FROM lt.case_record c WHERE c.id = o.row_id)))
       AND NOT EXISTS (SELECT 1 FROM lt.resync_held h
                        WHERE h.kind = CASE o.kind WHEN 1 THEN 'value' ELSE 'case' END
                          AND (h.held_row ->> 'id')::bigint = o.row_id)
$$;

-- ---------------------------------------------------------------- privileges
DELETE FROM lt.function_grant
 WHERE role = 'lienthong_daemon'
   AND signature IN ('lt.child_hello(text, bigint)', 'lt.apply_batch(text, bigint, bigint)');
INSERT INTO lt.function_grant (role, signature) VALUES
    ('lienthong_daemon', 'lt.upstream_welcome(bigint, bigint, text)'),
    ('lienthong_daemon', 'lt.child_welcome(text, bigint)'),
    ('lienthong_daemon', 'lt.apply_link_batch(text, bigint, bigint, bigint, text, int)')
ON CONFLICT DO NOTHING;
SELECT lt.apply_privileges();
