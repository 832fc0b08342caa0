-- 0008_transport.sql — what the links need for the officers' data: submissions in
-- the outbox stream (record kind 3) and their apply at a parent inside the batch's
-- transaction, under the same sequence rules as values and cases.

-- Child side: the outbox now carries submissions too. Personal data is still not
-- joined: lt.case_personal has no path into this result.
DROP FUNCTION lt.outbox_read(bigint, int);
CREATE FUNCTION lt.outbox_read(p_after bigint, p_limit int)
RETURNS TABLE (
    seq bigint, kind smallint,
    unit_code text, element text, period text, disagg text, value text, version bigint, changed_ms bigint,
    case_id uuid, deleted boolean, sex text, birth_ym text, ethnicity smallint, village_code text,
    categories int, status text, notified_ms bigint, assessed_ms bigint, emergency_ms bigint,
    plan_drafted_ms bigint, plan_approved_ms bigint, reviewed_ms bigint, closed_ms bigint, services int,
    data_set text, submitted_ms bigint, first_submitted_ms bigint, decided_by text, decided_ms bigint,
    reason text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = lt, pg_temp AS $$
    SELECT o.seq, o.kind,
           coalesce(d.unit_code, c.unit_code, s.unit_code), d.element, coalesce(d.period, s.period), d.disagg,
           d.value::text,
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
           s.reason
      FROM lt.outbox o
      LEFT JOIN lt.data_value d ON o.kind = 1 AND d.id = o.row_id
      LEFT JOIN lt.case_record c ON o.kind = 2 AND c.id = o.row_id
      LEFT JOIN lt.submission s ON o.kind = 3 AND s.id = o.row_id
     WHERE o.seq > p_after
     ORDER BY o.seq
     LIMIT p_limit
$$;

-- Parent side: the submissions of a batch (an array of submission rows, each with its
-- "seq"), applied inside the batch's transaction BEFORE lt.apply_batch checks and
-- advances the child's position: so the same rules hold — nothing of a batch that
-- leaves a gap is applied, and records at or below the last applied seq are skipped.
-- Result: one row per refused record (seq, wire code, reason), then ('applied' count)
-- as a row with seq NULL.
CREATE FUNCTION lt.apply_submissions(p_child text, p_prev bigint, p_rows jsonb)
RETURNS TABLE (seq bigint, code int, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
#variable_conflict use_column
DECLARE
    last_applied bigint;
    r jsonb;
    res record;
    applied int := 0;
BEGIN
    PERFORM lt.writer_lock();
    SELECT l.last_applied_seq INTO last_applied FROM lt.child_link l WHERE l.child_unit = p_child;
    last_applied := coalesce(last_applied, 0);
    IF p_prev > last_applied THEN
        RETURN QUERY SELECT NULL::bigint, 0, 'gap'::text;
        RETURN;
    END IF;
    FOR r IN SELECT x FROM jsonb_array_elements(p_rows) x
              WHERE (x ->> 'seq')::bigint > last_applied
              ORDER BY (x ->> 'seq')::bigint LOOP
        FOR res IN SELECT * FROM lt.submission_apply(p_child, jsonb_build_array(r)) LOOP
            IF res.kind = 'reject' THEN
                RETURN QUERY SELECT (r ->> 'seq')::bigint, res.n, res.reason;
            ELSE
                applied := applied + res.n;
            END IF;
        END LOOP;
    END LOOP;
    RETURN QUERY SELECT NULL::bigint, applied, 'applied'::text;
END $$;

-- A full resync (lt.upstream_rewound) re-queues submissions too.
CREATE OR REPLACE FUNCTION lt.requeue_all() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM lt.writer_lock();
    INSERT INTO lt.outbox (kind, row_id) SELECT 1, id FROM lt.data_value ORDER BY id;
    INSERT INTO lt.outbox (kind, row_id) SELECT 2, id FROM lt.case_record ORDER BY id;
    INSERT INTO lt.outbox (kind, row_id) SELECT 3, id FROM lt.submission ORDER BY id;
    n := (SELECT count(*) FROM lt.data_value) + (SELECT count(*) FROM lt.case_record)
         + (SELECT count(*) FROM lt.submission);
    UPDATE lt.upstream SET resyncs = resyncs + 1, updated_at = now();
    PERFORM pg_notify('lt_outbox', '');
    RETURN n;
END $$;

-- Parent side: the highest COMMITTED version of this node's metadata log, the bound a
-- parent pushes children up to. Not the sequence (lt.meta_high): a version taken by a
-- transaction still in progress is not readable yet, and treating it as sent would skip
-- it. Writers hold lt.meta_lock() until they commit, so versions commit in order.
CREATE FUNCTION lt.meta_committed_high() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = lt, pg_temp AS $$
    SELECT coalesce(max(version), 0) FROM lt.meta_change
$$;

DO $$
BEGIN
    IF to_regclass('lt.function_grant') IS NOT NULL THEN
        INSERT INTO lt.function_grant (role, signature) VALUES
            ('lienthong_daemon', 'lt.meta_committed_high()'),
            ('lienthong_daemon', 'lt.apply_submissions(text, bigint, jsonb)')
        ON CONFLICT DO NOTHING;
    END IF;
    IF to_regprocedure('lt.apply_privileges()') IS NOT NULL THEN
        PERFORM lt.apply_privileges();
    END IF;
END $$;
