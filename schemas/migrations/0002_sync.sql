-- 0002_sync.sql — roll-up maintenance, the trigger-fed outbox, local writes,
-- batch apply at a parent, and from-scratch verification.
--
-- Every leaf writer first takes lt.writer_lock(): the outbox's sequence then
-- becomes visible in commit order (see 0001).

CREATE FUNCTION lt.writer_lock() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(7455100001) $$;

-- ---------------------------------------------------------------- unit tree
-- Rebuild the closure and this node's roll-up paths from lt.unit and lt.node.
-- Validity windows of a path are the intersection of its edges' windows.
CREATE FUNCTION lt.rebuild_unit_tree() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    me text := (SELECT unit_code FROM lt.node);
BEGIN
    TRUNCATE lt.unit_ancestor, lt.rollup_path;
    INSERT INTO lt.unit_ancestor (descendant, ancestor, depth, valid_from, valid_to)
    WITH RECURSIVE up AS (
        SELECT u.code AS descendant, u.code AS ancestor, 0 AS depth,
               u.valid_from, u.valid_to, u.parent_code
          FROM lt.unit u
        UNION ALL
        SELECT up.descendant, p.code, up.depth + 1,
               greatest(up.valid_from, p.valid_from), least(up.valid_to, p.valid_to), p.parent_code
          FROM up
          JOIN lt.unit p ON p.code = up.parent_code
                        AND p.valid_from < up.valid_to AND up.valid_from < p.valid_to
         WHERE up.depth < 6
    )
    SELECT descendant, ancestor, depth, valid_from, valid_to FROM up
    ON CONFLICT DO NOTHING;

    -- ancestors of d at depth <= the depth of this node above d, in the common window
    INSERT INTO lt.rollup_path (descendant, ancestor, valid_from, valid_to)
    SELECT a.descendant, a.ancestor,
           greatest(a.valid_from, m.valid_from), least(a.valid_to, m.valid_to)
      FROM lt.unit_ancestor m
      JOIN lt.unit_ancestor a ON a.descendant = m.descendant AND a.depth <= m.depth
                             AND a.valid_from < m.valid_to AND m.valid_from < a.valid_to
     WHERE m.ancestor = me
    ON CONFLICT DO NOTHING;
END $$;

-- ---------------------------------------------------------------- triggers
-- One function per leaf table, fired once per statement with the statement's
-- transition tables: set-based, so a 5,000-row batch costs a handful of joins.
CREATE FUNCTION lt.data_value_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lt.writer_lock();
    -- static SQL per operation (no EXECUTE): its plan is cached for the session
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lt.rollup_value AS r (unit_code, element, period, disagg, total, n_rows, updated_at)
        SELECT p.ancestor, d.element, d.period, d.disagg, sum(d.value), count(*), now()
          FROM new_rows d
          JOIN lt.rollup_path p ON p.descendant = d.unit_code
                               AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
         WHERE d.value IS NOT NULL
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        ON CONFLICT (unit_code, element, period, disagg) DO UPDATE
           SET total = trim_scale(r.total + EXCLUDED.total),
               n_rows = r.n_rows + EXCLUDED.n_rows,
               updated_at = EXCLUDED.updated_at;
    ELSE
        INSERT INTO lt.rollup_value AS r (unit_code, element, period, disagg, total, n_rows, updated_at)
        SELECT p.ancestor, d.element, d.period, d.disagg, sum(d.dv), sum(d.dn), now()
          FROM (SELECT unit_code, element, period, disagg, ref_date, value AS dv, 1 AS dn
                  FROM new_rows WHERE value IS NOT NULL
                UNION ALL
                SELECT unit_code, element, period, disagg, ref_date, -value, -1
                  FROM old_rows WHERE value IS NOT NULL) d
          JOIN lt.rollup_path p ON p.descendant = d.unit_code
                               AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        ON CONFLICT (unit_code, element, period, disagg) DO UPDATE
           SET total = trim_scale(r.total + EXCLUDED.total),
               n_rows = r.n_rows + EXCLUDED.n_rows,
               updated_at = EXCLUDED.updated_at;
    END IF;

    IF (SELECT has_parent FROM lt.node) THEN
        INSERT INTO lt.outbox (kind, row_id) SELECT 1, id FROM new_rows ORDER BY id;
        PERFORM pg_notify('lt_outbox', '');
    END IF;
    RETURN NULL;
END $$;

-- A case counts once under category 0 ("any") and once under each of its categories.
CREATE FUNCTION lt.case_record_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lt.writer_lock();
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lt.rollup_case AS r (unit_code, period, category, status, n, updated_at)
        SELECT p.ancestor, d.period, g.category, d.status, count(*), now()
          FROM new_rows d
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
    ELSE
        INSERT INTO lt.rollup_case AS r (unit_code, period, category, status, n, updated_at)
        SELECT p.ancestor, d.period, g.category, d.status, sum(d.dn), now()
          FROM (SELECT unit_code, period, ref_date, categories, status, 1 AS dn
                  FROM new_rows WHERE NOT deleted
                UNION ALL
                SELECT unit_code, period, ref_date, categories, status, -1
                  FROM old_rows WHERE NOT deleted) d
          JOIN lt.rollup_path p ON p.descendant = d.unit_code
                               AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
          JOIN LATERAL (SELECT 0 AS category
                        UNION ALL
                        SELECT b + 1 FROM generate_series(0, 16) b
                         WHERE d.categories & (1 << b) <> 0) g ON true
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        ON CONFLICT (unit_code, period, category, status) DO UPDATE
           SET n = r.n + EXCLUDED.n, updated_at = EXCLUDED.updated_at;
    END IF;

    IF (SELECT has_parent FROM lt.node) THEN
        INSERT INTO lt.outbox (kind, row_id) SELECT 2, id FROM new_rows ORDER BY id;
        PERFORM pg_notify('lt_outbox', '');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION lt.refuse_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are never deleted; write a tombstone (lt.delete_value / deleted case) instead', TG_TABLE_NAME
        USING ERRCODE = 'check_violation';
END $$;

CREATE TRIGGER data_value_ins AFTER INSERT ON lt.data_value
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.data_value_changed();
CREATE TRIGGER data_value_upd AFTER UPDATE ON lt.data_value
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.data_value_changed();
CREATE TRIGGER data_value_del BEFORE DELETE ON lt.data_value
    FOR EACH ROW EXECUTE FUNCTION lt.refuse_delete();
CREATE TRIGGER case_record_ins AFTER INSERT ON lt.case_record
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.case_record_changed();
CREATE TRIGGER case_record_upd AFTER UPDATE ON lt.case_record
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.case_record_changed();
CREATE TRIGGER case_record_del BEFORE DELETE ON lt.case_record
    FOR EACH ROW EXECUTE FUNCTION lt.refuse_delete();

-- ---------------------------------------------------------------- local writes
-- A node writes leaf rows only for its own unit (one writer per row). Versions are
-- microseconds since the epoch, and always above the row's previous version: a node
-- restored from an old backup still writes versions newer than what it sent before.
CREATE FUNCTION lt.next_version(prev bigint) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT greatest(coalesce(prev, 0) + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
$$;

CREATE FUNCTION lt.check_own_unit(u text, ref date) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF u IS DISTINCT FROM (SELECT unit_code FROM lt.node) THEN
        RAISE EXCEPTION 'unit % is not this node''s unit (%): a row is written only by the unit it belongs to',
            u, (SELECT unit_code FROM lt.node) USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM lt.rollup_path p WHERE p.descendant = u AND p.ancestor = u
                      AND ref >= p.valid_from AND ref < p.valid_to) THEN
        RAISE EXCEPTION 'unit % did not exist on % (the end of the period)', u, ref
            USING ERRCODE = 'check_violation';
    END IF;
END $$;

CREATE FUNCTION lt.put_value(p_unit text, p_element text, p_period text, p_disagg text, p_value numeric)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    PERFORM lt.writer_lock();
    IF lt.period_end(p_period) IS NULL THEN
        RAISE EXCEPTION 'period "%" is not a period (YYYY, YYYYMM, YYYYQn, YYYYSn, YYYY-YYYY)', p_period
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM lt.data_element WHERE code = p_element) THEN
        RAISE EXCEPTION 'unknown data element "%"', p_element USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_value IS NOT NULL AND abs(p_value) > 1e15 THEN
        RAISE EXCEPTION 'value % is out of range', p_value USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    PERFORM lt.check_own_unit(p_unit, lt.period_end(p_period));
    SELECT lt.next_version(d.version) INTO v
      FROM lt.data_value d
     WHERE (d.unit_code, d.element, d.period, d.disagg) = (p_unit, p_element, p_period, coalesce(p_disagg, ''));
    v := coalesce(v, lt.next_version(0));
    INSERT INTO lt.data_value AS d (unit_code, element, period, disagg, value, version, changed_at)
    VALUES (p_unit, p_element, p_period, coalesce(p_disagg, ''), trim_scale(p_value), v, date_trunc('milliseconds', clock_timestamp()))
    ON CONFLICT (unit_code, element, period, disagg) DO UPDATE
       SET value = EXCLUDED.value, version = EXCLUDED.version,
           changed_at = EXCLUDED.changed_at, received_at = now(), via = 'local';
    RETURN v;
END $$;

CREATE FUNCTION lt.delete_value(p_unit text, p_element text, p_period text, p_disagg text)
RETURNS bigint
LANGUAGE sql AS $$ SELECT lt.put_value(p_unit, p_element, p_period, p_disagg, NULL) $$;

-- Write a case from a JSON document (keys: case_id, unit, sex, birth_ym, ethnicity,
-- village, categories (int or array of category codes), status, notified_at, assessed_at,
-- emergency_at, plan_drafted_at, plan_approved_at, reviewed_at, closed_at, services,
-- deleted, and the personal keys full_name, guardian_name, address, phone, notes).
-- Returns the case's pseudonymous id.
CREATE FUNCTION lt.put_case(doc jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    cid uuid := coalesce((doc ->> 'case_id')::uuid, gen_random_uuid());
    u text := coalesce(doc ->> 'unit', (SELECT unit_code FROM lt.node));
    cats int;
    prev lt.case_record%ROWTYPE;
    notified timestamptz := date_trunc('milliseconds', coalesce((doc ->> 'notified_at')::timestamptz, now()));
BEGIN
    PERFORM lt.writer_lock();
    IF jsonb_typeof(doc -> 'categories') = 'array' THEN
        SELECT coalesce(sum(1 << c.bit), 0)::int INTO cats
          FROM jsonb_array_elements_text(doc -> 'categories') j
          LEFT JOIN lt.case_category c ON c.code = j.value;
        IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(doc -> 'categories') j
                    WHERE NOT EXISTS (SELECT 1 FROM lt.case_category c WHERE c.code = j.value)) THEN
            RAISE EXCEPTION 'unknown case category in %', doc -> 'categories' USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        cats := (doc ->> 'categories')::int;
    END IF;
    PERFORM lt.check_own_unit(u, lt.period_end(lt.month_of(notified)));
    SELECT * INTO prev FROM lt.case_record WHERE case_id = cid FOR UPDATE;
    IF FOUND AND prev.unit_code <> u THEN
        RAISE EXCEPTION 'case % belongs to unit %', cid, prev.unit_code USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO lt.case_record AS c (case_id, unit_code, version, changed_at, deleted, sex, birth_ym, ethnicity,
        village_code, categories, status, notified_at, assessed_at, emergency_at, plan_drafted_at,
        plan_approved_at, reviewed_at, closed_at, services)
    VALUES (cid, u, lt.next_version(prev.version), date_trunc('milliseconds', clock_timestamp()), coalesce((doc ->> 'deleted')::boolean, false),
        coalesce(doc ->> 'sex', 'U'), doc ->> 'birth_ym', (doc ->> 'ethnicity')::smallint, doc ->> 'village',
        cats, coalesce(doc ->> 'status', 'notified'), notified,
        date_trunc('milliseconds', (doc ->> 'assessed_at')::timestamptz), date_trunc('milliseconds', (doc ->> 'emergency_at')::timestamptz),
        date_trunc('milliseconds', (doc ->> 'plan_drafted_at')::timestamptz), date_trunc('milliseconds', (doc ->> 'plan_approved_at')::timestamptz),
        date_trunc('milliseconds', (doc ->> 'reviewed_at')::timestamptz), date_trunc('milliseconds', (doc ->> 'closed_at')::timestamptz),
        coalesce((doc ->> 'services')::int, 0))
    ON CONFLICT (case_id) DO UPDATE
       SET version = EXCLUDED.version, changed_at = EXCLUDED.changed_at, deleted = EXCLUDED.deleted,
           sex = EXCLUDED.sex, birth_ym = EXCLUDED.birth_ym, ethnicity = EXCLUDED.ethnicity,
           village_code = EXCLUDED.village_code, categories = EXCLUDED.categories, status = EXCLUDED.status,
           notified_at = EXCLUDED.notified_at, assessed_at = EXCLUDED.assessed_at,
           emergency_at = EXCLUDED.emergency_at, plan_drafted_at = EXCLUDED.plan_drafted_at,
           plan_approved_at = EXCLUDED.plan_approved_at, reviewed_at = EXCLUDED.reviewed_at,
           closed_at = EXCLUDED.closed_at, services = EXCLUDED.services, received_at = now(), via = 'local';
    IF doc ?| ARRAY['full_name', 'guardian_name', 'address', 'phone', 'notes'] THEN
        INSERT INTO lt.case_personal AS p (case_id, full_name, guardian_name, address, phone, notes)
        VALUES (cid, doc ->> 'full_name', doc ->> 'guardian_name', doc ->> 'address', doc ->> 'phone', doc ->> 'notes')
        ON CONFLICT (case_id) DO UPDATE
           SET full_name = coalesce(EXCLUDED.full_name, p.full_name),
               guardian_name = coalesce(EXCLUDED.guardian_name, p.guardian_name),
               address = coalesce(EXCLUDED.address, p.address),
               phone = coalesce(EXCLUDED.phone, p.phone),
               notes = coalesce(EXCLUDED.notes, p.notes),
               updated_at = now();
    END IF;
    RETURN cid;
END $$;

-- Put every leaf row of this node back in the outbox: after the parent lost data
-- (restored from a backup) or when a node gains a parent. Re-sending is harmless.
CREATE FUNCTION lt.requeue_all() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM lt.writer_lock();
    INSERT INTO lt.outbox (kind, row_id) SELECT 1, id FROM lt.data_value ORDER BY id;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO lt.outbox (kind, row_id) SELECT 2, id FROM lt.case_record ORDER BY id;
    n := n + (SELECT count(*) FROM lt.case_record);
    UPDATE lt.upstream SET resyncs = resyncs + 1, updated_at = now();
    PERFORM pg_notify('lt_outbox', '');
    RETURN n;
END $$;

-- ---------------------------------------------------------------- apply at a parent
-- The session's staging tables; the daemon calls this after every connect.
-- Column order is the COPY order the daemon writes (services/lienthongd/apply.c).
CREATE FUNCTION lt.create_staging() RETURNS void
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
END $$;

-- The daemon COPYs a batch into the session's staging tables (pg_temp.stage_value,
-- pg_temp.stage_case), then calls lt.apply_batch, which in ONE transaction:
-- checks the hop sequence, refuses records outside the child's subtree (kept in
-- lt.rejected_delta), upserts the latest version of each leaf row (the triggers then
-- roll up and fill this node's own outbox), advances last_applied_seq, and empties
-- the staging tables. Result rows: one ('summary', applied_upto, n_applied, 0, status)
-- with status 'applied' | 'duplicate' | 'gap', then one ('reject', seq, 0, code, reason)
-- per refused record. Codes are the wire's: 6 bad field, 7 unauthorised, 8 refused by the database.
CREATE FUNCTION lt.apply_batch(p_child text, p_prev bigint, p_last bigint)
RETURNS TABLE (kind text, seq bigint, n bigint, code int, reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    last_applied bigint;
    n_in bigint;
    n_rej bigint;
BEGIN
    PERFORM lt.writer_lock();
    INSERT INTO lt.child_link (child_unit) VALUES (p_child) ON CONFLICT DO NOTHING;
    SELECT l.last_applied_seq INTO last_applied FROM lt.child_link l WHERE l.child_unit = p_child FOR UPDATE;

    IF p_last <= last_applied OR p_prev > last_applied THEN
        DELETE FROM pg_temp.stage_value;
        DELETE FROM pg_temp.stage_case;
        UPDATE lt.child_link SET last_contact = now() WHERE child_unit = p_child;
        RETURN QUERY SELECT 'summary'::text, last_applied, 0::bigint, 0,
                            CASE WHEN p_last <= last_applied THEN 'duplicate' ELSE 'gap' END;
        RETURN;
    END IF;

    -- records at or below last_applied were applied by an earlier batch
    DELETE FROM pg_temp.stage_value s WHERE s.seq <= last_applied;
    DELETE FROM pg_temp.stage_case s WHERE s.seq <= last_applied;

    DELETE FROM pg_temp.stage_reject;

    INSERT INTO pg_temp.stage_reject
    SELECT s.seq, x.code, x.reason, to_jsonb(s)
      FROM pg_temp.stage_value s
      CROSS JOIN LATERAL (
        SELECT CASE
            WHEN lt.period_end(s.period) IS NULL THEN 6
            WHEN NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                              WHERE p.descendant = s.unit_code AND p.ancestor = p_child
                                AND lt.period_end(s.period) >= p.valid_from
                                AND lt.period_end(s.period) < p.valid_to) THEN 7
            WHEN NOT EXISTS (SELECT 1 FROM lt.data_element e WHERE e.code = s.element) THEN 6
            WHEN abs(s.value) > 1e15 THEN 6
        END AS code,
        CASE
            WHEN lt.period_end(s.period) IS NULL THEN format('period "%s" is not a period', s.period)
            WHEN NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                              WHERE p.descendant = s.unit_code AND p.ancestor = p_child
                                AND lt.period_end(s.period) >= p.valid_from
                                AND lt.period_end(s.period) < p.valid_to)
                THEN format('unit %s is not inside the subtree of %s (as of %s) at this node',
                            s.unit_code, p_child, lt.period_end(s.period))
            WHEN NOT EXISTS (SELECT 1 FROM lt.data_element e WHERE e.code = s.element)
                THEN format('unknown data element "%s"', s.element)
            ELSE format('value %s out of range', s.value)
        END AS reason) x
     WHERE x.code IS NOT NULL;

    INSERT INTO pg_temp.stage_reject
    SELECT s.seq, x.code, x.reason, to_jsonb(s)
      FROM pg_temp.stage_case s
      CROSS JOIN LATERAL (
        SELECT CASE
            WHEN NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                              WHERE p.descendant = s.unit_code AND p.ancestor = p_child
                                AND lt.period_end(lt.month_of(s.notified_at)) >= p.valid_from
                                AND lt.period_end(lt.month_of(s.notified_at)) < p.valid_to) THEN 7
            WHEN EXISTS (SELECT 1 FROM lt.case_record c WHERE c.case_id = s.case_id AND c.unit_code <> s.unit_code) THEN 7
            WHEN NOT EXISTS (SELECT 1 FROM lt.case_status st WHERE st.code = s.status) THEN 6
        END AS code,
        CASE
            WHEN NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                              WHERE p.descendant = s.unit_code AND p.ancestor = p_child
                                AND lt.period_end(lt.month_of(s.notified_at)) >= p.valid_from
                                AND lt.period_end(lt.month_of(s.notified_at)) < p.valid_to)
                THEN format('unit %s is not inside the subtree of %s (as of %s) at this node',
                            s.unit_code, p_child, lt.period_end(lt.month_of(s.notified_at)))
            WHEN EXISTS (SELECT 1 FROM lt.case_record c WHERE c.case_id = s.case_id AND c.unit_code <> s.unit_code)
                THEN format('case %s belongs to another unit', s.case_id)
            ELSE format('unknown case status "%s"', s.status)
        END AS reason) x
     WHERE x.code IS NOT NULL;

    SELECT count(*) INTO n_rej FROM pg_temp.stage_reject;
    IF n_rej > 0 THEN
        INSERT INTO lt.rejected_delta (child_unit, seq, code, reason, record)
        SELECT p_child, r.seq, r.code, r.reason, r.record FROM pg_temp.stage_reject r;
        DELETE FROM pg_temp.stage_value s USING pg_temp.stage_reject r WHERE s.seq = r.seq;
        DELETE FROM pg_temp.stage_case s USING pg_temp.stage_reject r WHERE s.seq = r.seq;
    END IF;
    n_in := (SELECT count(*) FROM pg_temp.stage_value) + (SELECT count(*) FROM pg_temp.stage_case);

    -- latest version per key; an older version never overwrites a newer one. An empty
    -- statement would still fire the roll-up and audit triggers: skip it.
    IF EXISTS (SELECT 1 FROM pg_temp.stage_value) THEN
    INSERT INTO lt.data_value AS d (unit_code, element, period, disagg, value, version, changed_at, via)
    SELECT DISTINCT ON (s.unit_code, s.element, s.period, s.disagg)
           s.unit_code, s.element, s.period, s.disagg, s.value, s.version, s.changed_at, p_child
      FROM pg_temp.stage_value s
     ORDER BY s.unit_code, s.element, s.period, s.disagg, s.version DESC
    ON CONFLICT (unit_code, element, period, disagg) DO UPDATE
       SET value = EXCLUDED.value, version = EXCLUDED.version, changed_at = EXCLUDED.changed_at,
           received_at = now(), via = EXCLUDED.via
     WHERE d.version < EXCLUDED.version;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_temp.stage_case) THEN
    INSERT INTO lt.case_record AS c (case_id, unit_code, version, changed_at, deleted, sex, birth_ym, ethnicity,
        village_code, categories, status, notified_at, assessed_at, emergency_at, plan_drafted_at,
        plan_approved_at, reviewed_at, closed_at, services, via)
    SELECT DISTINCT ON (s.case_id)
           s.case_id, s.unit_code, s.version, s.changed_at, s.deleted, s.sex, s.birth_ym, s.ethnicity,
           s.village_code, s.categories, s.status, s.notified_at, s.assessed_at, s.emergency_at,
           s.plan_drafted_at, s.plan_approved_at, s.reviewed_at, s.closed_at, s.services, p_child
      FROM pg_temp.stage_case s
     ORDER BY s.case_id, s.version DESC
    ON CONFLICT (case_id) DO UPDATE
       SET version = EXCLUDED.version, changed_at = EXCLUDED.changed_at, deleted = EXCLUDED.deleted,
           sex = EXCLUDED.sex, birth_ym = EXCLUDED.birth_ym, ethnicity = EXCLUDED.ethnicity,
           village_code = EXCLUDED.village_code, categories = EXCLUDED.categories, status = EXCLUDED.status,
           notified_at = EXCLUDED.notified_at, assessed_at = EXCLUDED.assessed_at,
           emergency_at = EXCLUDED.emergency_at, plan_drafted_at = EXCLUDED.plan_drafted_at,
           plan_approved_at = EXCLUDED.plan_approved_at, reviewed_at = EXCLUDED.reviewed_at,
           closed_at = EXCLUDED.closed_at, services = EXCLUDED.services, received_at = now(), via = EXCLUDED.via
     WHERE c.version < EXCLUDED.version AND c.unit_code = EXCLUDED.unit_code;
    END IF;

    UPDATE lt.child_link
       SET last_applied_seq = p_last, applied_rows = applied_rows + n_in,
           rejected_rows = rejected_rows + n_rej, batches = batches + 1,
           last_batch_at = now(), last_contact = now(), state = 'streaming'
     WHERE child_unit = p_child;

    RETURN QUERY SELECT 'summary'::text, p_last, n_in, 0, 'applied'::text;
    RETURN QUERY SELECT 'reject'::text, r.seq, 0::bigint, r.code, r.reason FROM pg_temp.stage_reject r ORDER BY r.seq;
    -- emptied with DELETE, not TRUNCATE (which would make every cached plan here be rebuilt)
    DELETE FROM pg_temp.stage_value;
    DELETE FROM pg_temp.stage_case;
END $$;

-- ---------------------------------------------------------------- verify
-- Every difference between the maintained roll-ups and a from-scratch recomputation
-- over this node's leaf rows. Empty means the node is consistent.
CREATE FUNCTION lt.verify()
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
     WHERE (o.kind = 1 AND NOT EXISTS (SELECT 1 FROM lt.data_value d WHERE d.id = o.row_id))
        OR (o.kind = 2 AND NOT EXISTS (SELECT 1 FROM lt.case_record c WHERE c.id = o.row_id))
$$;

-- A digest of the leaf rows of one unit's subtree (as seen at this node), comparable
-- between a parent and the child that owns them: equal digests, equal rows.
CREATE FUNCTION lt.leaf_digest(p_unit text)
RETURNS TABLE (rows_value bigint, rows_case bigint, digest text)
LANGUAGE sql STABLE AS $$
    WITH v AS (
        SELECT d.unit_code, d.element, d.period, d.disagg, d.value, d.version
          FROM lt.data_value d
         WHERE EXISTS (SELECT 1 FROM lt.unit_ancestor a WHERE a.descendant = d.unit_code AND a.ancestor = p_unit
                          AND d.ref_date >= a.valid_from AND d.ref_date < a.valid_to)),
    c AS (
        SELECT d.case_id, d.unit_code, d.version, d.deleted, d.sex, d.birth_ym, d.ethnicity, d.village_code,
               d.categories, d.status, d.notified_at, d.assessed_at, d.emergency_at, d.plan_drafted_at,
               d.plan_approved_at, d.reviewed_at, d.closed_at, d.services
          FROM lt.case_record d
         WHERE EXISTS (SELECT 1 FROM lt.unit_ancestor a WHERE a.descendant = d.unit_code AND a.ancestor = p_unit
                          AND d.ref_date >= a.valid_from AND d.ref_date < a.valid_to))
    SELECT (SELECT count(*) FROM v), (SELECT count(*) FROM c),
           md5(coalesce((SELECT string_agg(v::text, E'\n' ORDER BY v.unit_code, v.element, v.period, v.disagg) FROM v), '')
               || '|' ||
               coalesce((SELECT string_agg(c::text, E'\n' ORDER BY c.case_id) FROM c), ''))
$$;
