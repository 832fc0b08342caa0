-- 0010_apply_group.sql — one set-based apply for many batches (group commit).
--
-- A parent under thousands of communes receives many small batches; applying them one
-- statement sequence at a time costs a fixed price per batch (a dozen statements, four
-- statement triggers each) that dwarfs the rows. lt.apply_group applies every batch
-- waiting in the daemon's queue with ONE pass over the staging tables: each staged row
-- carries its batch's position in the group (ord), the hop sequence of every child is
-- checked batch by batch in plpgsql (cheap: no rows touched), and then one statement per
-- table checks, refuses, deduplicates and upserts the rows of all batches together, so
-- the roll-up, audit and outbox triggers fire once per group.
--
-- The rules are those of lt.apply_batch, which is now the one-batch case of this:
--  * a batch at or below the child's last applied seq is a duplicate (nothing applied);
--  * a batch whose prev_seq is above it leaves a gap (nothing applied);
--  * records at or below the position reached by the batches before it are skipped;
--  * refused records go to lt.rejected_delta and are answered; the rest lands;
--  * the newest version of each key wins, and never overwrites a newer stored one.
-- Batches of one child are taken in their order in the group; batches of different
-- children are independent.
--
-- Staging rows without an ord (the one-batch path) have ord 0.

CREATE OR REPLACE FUNCTION lt.create_staging() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS stage_value (
        seq bigint, unit_code text, element text, period text, disagg text,
        value numeric, version bigint, changed_at timestamptz, ord int NOT NULL DEFAULT 0) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_case (
        seq bigint, case_id uuid, unit_code text, version bigint, changed_at timestamptz, deleted boolean,
        sex text, birth_ym text, ethnicity smallint, village_code text, categories int, status text,
        notified_at timestamptz, assessed_at timestamptz, emergency_at timestamptz,
        plan_drafted_at timestamptz, plan_approved_at timestamptz, reviewed_at timestamptz,
        closed_at timestamptz, services int, ord int NOT NULL DEFAULT 0) ON COMMIT DELETE ROWS;
    -- a session that created its staging before this migration: add what is new
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'pg_temp.stage_value'::regclass AND attname = 'ord') THEN
        ALTER TABLE pg_temp.stage_value ADD COLUMN ord int NOT NULL DEFAULT 0;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'pg_temp.stage_case'::regclass AND attname = 'ord') THEN
        ALTER TABLE pg_temp.stage_case ADD COLUMN ord int NOT NULL DEFAULT 0;
    END IF;
    IF to_regclass('pg_temp.stage_batch') IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('pg_temp.stage_batch') AND attname = 'token') THEN
        DROP TABLE pg_temp.stage_batch;
    END IF;
    IF to_regclass('pg_temp.stage_reject') IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('pg_temp.stage_reject') AND attname = 'ord') THEN
        DROP TABLE pg_temp.stage_reject;
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS stage_reject (ord int, seq bigint, code int, reason text, record jsonb) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_batch (
        ord int PRIMARY KEY, child text NOT NULL, prev bigint NOT NULL, last bigint NOT NULL,
        token bigint, from_seq bigint NOT NULL, status text NOT NULL, n_in bigint NOT NULL DEFAULT 0,
        n_rej bigint NOT NULL DEFAULT 0) ON COMMIT DELETE ROWS;
    GRANT SELECT, INSERT, TRUNCATE ON pg_temp.stage_value, pg_temp.stage_case TO SESSION_USER;
END $$;

-- Batch ord (0-based) is (p_children[ord + 1], p_prevs[ord + 1], p_lasts[ord + 1]), and
-- p_tokens[ord + 1] is the child's token for its row at that last seq (0: unknown), kept
-- as the child's lt.child_link.last_token when its position moves (0009); with p_tokens
-- NULL the tokens are left as they are (lt.apply_link_batch sets it after lt.apply_batch).
-- Result rows: per batch one ('summary', ord, applied_upto, n_applied, 0, status), status
-- 'applied' | 'duplicate' | 'gap'; then ('reject', ord, seq, 0, code, reason) per refused
-- record. Codes are the wire's: 6 bad field, 7 unauthorised.
CREATE FUNCTION lt.apply_group(p_children text[], p_prevs bigint[], p_lasts bigint[],
                               p_tokens bigint[] DEFAULT NULL)
RETURNS TABLE (kind text, ord int, seq bigint, n bigint, code int, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
#variable_conflict use_column
DECLARE
    b record;
    cur text;
    pos bigint;
    k int := 0;
    ords int[] := '{}';
    froms bigint[] := '{}';
    statuses text[] := '{}';
    n_rej bigint;
BEGIN
    PERFORM lt.writer_lock();
    IF to_regclass('pg_temp.stage_batch') IS NULL THEN
        PERFORM lt.create_staging(); -- a session older than this function
    END IF;
    INSERT INTO lt.child_link (child_unit)
    SELECT DISTINCT c FROM unnest(p_children) c ORDER BY 1
    ON CONFLICT DO NOTHING;

    -- the hop sequence, batch by batch, per child in the group's order
    FOR b IN SELECT (g.i - 1)::int AS ord, g.child, g.prev, g.last, l.last_applied_seq AS applied
               FROM unnest(p_children, p_prevs, p_lasts) WITH ORDINALITY AS g(child, prev, last, i)
               JOIN lt.child_link l ON l.child_unit = g.child
              ORDER BY g.child, g.i
                FOR UPDATE OF l LOOP
        IF cur IS DISTINCT FROM b.child THEN
            cur := b.child;
            pos := b.applied;
        END IF;
        -- element assignment extends the arrays in place (|| would copy them each time)
        k := k + 1;
        ords[k] := b.ord;
        froms[k] := pos;
        IF b.last <= pos THEN
            statuses[k] := 'duplicate';
        ELSIF b.prev > pos THEN
            statuses[k] := 'gap';
        ELSE
            statuses[k] := 'applied';
            pos := b.last;
        END IF;
    END LOOP;
    INSERT INTO pg_temp.stage_batch (ord, child, prev, last, token, from_seq, status)
    SELECT x.ord, p_children[x.ord + 1], p_prevs[x.ord + 1], p_lasts[x.ord + 1], p_tokens[x.ord + 1],
           x.from_seq, x.status
      FROM unnest(ords, froms, statuses) AS x(ord, from_seq, status);

    -- nothing of a duplicate or a gap; records an earlier batch already applied
    DELETE FROM pg_temp.stage_value s USING pg_temp.stage_batch g
     WHERE g.ord = s.ord AND (g.status <> 'applied' OR s.seq <= g.from_seq);
    DELETE FROM pg_temp.stage_case s USING pg_temp.stage_batch g
     WHERE g.ord = s.ord AND (g.status <> 'applied' OR s.seq <= g.from_seq);

    -- Refusals. The period and subtree checks depend on (batch, unit, period) only: they
    -- run once per distinct key, not once per row.
    INSERT INTO pg_temp.stage_reject (ord, seq, code, reason, record)
    WITH k AS MATERIALIZED (
        SELECT DISTINCT s.ord, s.unit_code, s.period FROM pg_temp.stage_value s),
    kc AS MATERIALIZED (
        SELECT k.ord, k.unit_code, k.period, e.pe,
               CASE WHEN e.pe IS NULL THEN 6
                    WHEN NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                                      WHERE p.descendant = k.unit_code AND p.ancestor = g.child
                                        AND e.pe >= p.valid_from AND e.pe < p.valid_to) THEN 7
               END AS code
          FROM k
          JOIN pg_temp.stage_batch g ON g.ord = k.ord
         CROSS JOIN LATERAL (SELECT lt.period_end(k.period) AS pe OFFSET 0) e)
    SELECT s.ord, s.seq, x.code,
           CASE WHEN x.code = 7
                    THEN format('unit %s is not inside the subtree of %s (as of %s) at this node',
                                s.unit_code, g.child, kc.pe)
                WHEN kc.code = 6 OR s.period IS NULL THEN format('period "%s" is not a period', s.period)
                WHEN s.element IS NULL OR s.element NOT IN (SELECT e.code FROM lt.data_element e)
                    THEN format('unknown data element "%s"', s.element)
                ELSE format('value %s out of range', s.value)
           END,
           to_jsonb(s) - 'ord'
      FROM pg_temp.stage_value s
      JOIN pg_temp.stage_batch g ON g.ord = s.ord
      LEFT JOIN kc ON kc.ord = s.ord AND kc.unit_code = s.unit_code AND kc.period = s.period
     CROSS JOIN LATERAL (
        SELECT CASE WHEN kc.code IS NOT NULL THEN kc.code
                    WHEN s.period IS NULL THEN 6      -- a NULL key joins no kc row
                    WHEN s.unit_code IS NULL THEN 7
                    WHEN s.element IS NULL OR s.element NOT IN (SELECT e.code FROM lt.data_element e) THEN 6
                    WHEN abs(s.value) > 1e15 THEN 6 END AS code) x
     WHERE x.code IS NOT NULL;

    IF EXISTS (SELECT 1 FROM pg_temp.stage_case) THEN
        -- A case of another unit: already stored, or claimed by an earlier batch of the
        -- group for another unit (as if that batch had been applied first).
        INSERT INTO pg_temp.stage_reject (ord, seq, code, reason, record)
        SELECT s.ord, s.seq, x.code, x.reason, to_jsonb(s) - 'ord'
          FROM pg_temp.stage_case s
          JOIN pg_temp.stage_batch g ON g.ord = s.ord
          CROSS JOIN LATERAL (SELECT lt.period_end(lt.month_of(s.notified_at)) AS pe OFFSET 0) e
          CROSS JOIN LATERAL (
            SELECT CASE
                WHEN NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                                  WHERE p.descendant = s.unit_code AND p.ancestor = g.child
                                    AND e.pe >= p.valid_from AND e.pe < p.valid_to) THEN 7
                WHEN EXISTS (SELECT 1 FROM lt.case_record c WHERE c.case_id = s.case_id AND c.unit_code <> s.unit_code)
                  OR EXISTS (SELECT 1 FROM pg_temp.stage_case o
                              WHERE o.case_id = s.case_id AND o.ord < s.ord AND o.unit_code <> s.unit_code) THEN 7
                WHEN NOT EXISTS (SELECT 1 FROM lt.case_status st WHERE st.code = s.status) THEN 6
            END AS code,
            CASE
                WHEN NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                                  WHERE p.descendant = s.unit_code AND p.ancestor = g.child
                                    AND e.pe >= p.valid_from AND e.pe < p.valid_to)
                    THEN format('unit %s is not inside the subtree of %s (as of %s) at this node',
                                s.unit_code, g.child, e.pe)
                WHEN EXISTS (SELECT 1 FROM lt.case_record c WHERE c.case_id = s.case_id AND c.unit_code <> s.unit_code)
                  OR EXISTS (SELECT 1 FROM pg_temp.stage_case o
                              WHERE o.case_id = s.case_id AND o.ord < s.ord AND o.unit_code <> s.unit_code)
                    THEN format('case %s belongs to another unit', s.case_id)
                ELSE format('unknown case status "%s"', s.status)
            END AS reason) x
         WHERE x.code IS NOT NULL;
    END IF;

    SELECT count(*) INTO n_rej FROM pg_temp.stage_reject;
    IF n_rej > 0 THEN
        INSERT INTO lt.rejected_delta (child_unit, seq, code, reason, record)
        SELECT g.child, r.seq, r.code, r.reason, r.record
          FROM pg_temp.stage_reject r JOIN pg_temp.stage_batch g ON g.ord = r.ord
         ORDER BY r.ord, r.seq;
        DELETE FROM pg_temp.stage_value s USING pg_temp.stage_reject r WHERE s.ord = r.ord AND s.seq = r.seq;
        DELETE FROM pg_temp.stage_case s USING pg_temp.stage_reject r WHERE s.ord = r.ord AND s.seq = r.seq;
        UPDATE pg_temp.stage_batch g SET n_rej = r.n
          FROM (SELECT r.ord, count(*) AS n FROM pg_temp.stage_reject r GROUP BY r.ord) r
         WHERE g.ord = r.ord;
    END IF;

    -- the rows each batch brings (counted before deduplication, as acknowledged)
    UPDATE pg_temp.stage_batch g SET n_in = c.n
      FROM (SELECT t.ord, count(*) AS n
              FROM (SELECT s.ord FROM pg_temp.stage_value s UNION ALL SELECT s.ord FROM pg_temp.stage_case s) t
             GROUP BY t.ord) c
     WHERE g.ord = c.ord;

    -- latest version per key; an older version never overwrites a newer one. An empty
    -- statement would still fire the roll-up and audit triggers: skip it. Keys compare
    -- bytewise here ("C"): the same groups as any deterministic collation, sorted faster.
    IF EXISTS (SELECT 1 FROM pg_temp.stage_value) THEN
    INSERT INTO lt.data_value AS d (unit_code, element, period, disagg, value, version, changed_at, via)
    SELECT DISTINCT ON (s.unit_code COLLATE "C", s.element COLLATE "C", s.period COLLATE "C", s.disagg COLLATE "C")
           s.unit_code, s.element, s.period, s.disagg, s.value, s.version, s.changed_at, g.child
      FROM pg_temp.stage_value s
      JOIN pg_temp.stage_batch g ON g.ord = s.ord
     ORDER BY s.unit_code COLLATE "C", s.element COLLATE "C", s.period COLLATE "C", s.disagg COLLATE "C",
              s.version DESC
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
           s.plan_drafted_at, s.plan_approved_at, s.reviewed_at, s.closed_at, s.services, g.child
      FROM pg_temp.stage_case s
      JOIN pg_temp.stage_batch g ON g.ord = s.ord
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

    -- every child of the group: its position after its last applied batch
    UPDATE lt.child_link l
       SET last_applied_seq = coalesce(a.upto, l.last_applied_seq),
           last_token = CASE WHEN a.n > 0 AND p_tokens IS NOT NULL THEN coalesce(a.token, 0) ELSE l.last_token END,
           applied_rows = l.applied_rows + coalesce(a.n_in, 0),
           rejected_rows = l.rejected_rows + coalesce(a.n_rej, 0),
           batches = l.batches + coalesce(a.n, 0),
           last_batch_at = CASE WHEN a.n > 0 THEN now() ELSE l.last_batch_at END,
           last_contact = now(),
           state = CASE WHEN a.n > 0 THEN 'streaming' ELSE l.state END
      FROM (SELECT g.child, max(g.last) FILTER (WHERE g.status = 'applied') AS upto,
                   (array_agg(g.token ORDER BY g.last DESC) FILTER (WHERE g.status = 'applied'))[1] AS token,
                   sum(g.n_in) AS n_in, sum(g.n_rej) AS n_rej,
                   count(*) FILTER (WHERE g.status = 'applied') AS n
              FROM pg_temp.stage_batch g GROUP BY g.child) a
     WHERE l.child_unit = a.child;

    -- a duplicate or a gap answers with the position before it
    RETURN QUERY
        SELECT 'summary'::text, g.ord, CASE WHEN g.status = 'applied' THEN g.last ELSE g.from_seq END,
               g.n_in, 0, g.status
          FROM pg_temp.stage_batch g ORDER BY g.ord;
    RETURN QUERY
        SELECT 'reject'::text, r.ord, r.seq, 0::bigint, r.code, r.reason
          FROM pg_temp.stage_reject r ORDER BY r.ord, r.seq;
    -- emptied with DELETE, not TRUNCATE (which would make every cached plan here be rebuilt)
    DELETE FROM pg_temp.stage_value;
    DELETE FROM pg_temp.stage_case;
    DELETE FROM pg_temp.stage_reject;
    DELETE FROM pg_temp.stage_batch;
END $$;

-- One batch: the group of one. Same result rows as before (without ord).
CREATE OR REPLACE FUNCTION lt.apply_batch(p_child text, p_prev bigint, p_last bigint)
RETURNS TABLE (kind text, seq bigint, n bigint, code int, reason text)
LANGUAGE sql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
    SELECT g.kind, g.seq, g.n, g.code, g.reason
      FROM lt.apply_group(ARRAY[p_child], ARRAY[p_prev], ARRAY[p_last], NULL) g
$$;

-- Parent side: many HELLOs in one transaction (a parent that restarts under thousands of
-- children hears them all at once; one commit each would take seconds). Per child, what
-- lt.child_welcome does (its resume point and token, 0009); a unit that is not a child
-- is answered with the reason in `refused` instead of an error, so the others are still
-- welcomed.
CREATE FUNCTION lt.children_hello(p_children text[], p_max bigint[])
RETURNS TABLE (ord int, resume bigint, token bigint, refused text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
#variable_conflict use_column
DECLARE
    me text := (SELECT n.unit_code FROM lt.node n);
    c text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_children, 1), 0) LOOP
        c := p_children[i];
        ord := i - 1;
        resume := NULL;
        token := NULL;
        refused := NULL;
        IF NOT EXISTS (SELECT 1 FROM lt.unit_ancestor a WHERE a.descendant = c AND a.ancestor = me AND a.depth = 1) THEN
            refused := format('unit %s is not a child of %s in any period', c, me);
        ELSE
            INSERT INTO lt.child_link (child_unit) VALUES (c) ON CONFLICT DO NOTHING;
            UPDATE lt.child_link l
               SET last_contact = now(), child_max_seq = p_max[i], state = 'connected',
                   last_error = CASE WHEN p_max[i] < l.last_applied_seq
                                     THEN format('child sequence went backwards: it has issued up to %s, this node applied up to %s',
                                                 p_max[i], l.last_applied_seq)
                                     ELSE l.last_error END
             WHERE l.child_unit = c
            RETURNING l.last_applied_seq, l.last_token INTO resume, token;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

INSERT INTO lt.function_grant (role, signature) VALUES
    ('lienthong_daemon', 'lt.apply_group(text[], bigint[], bigint[], bigint[])'),
    ('lienthong_daemon', 'lt.children_hello(text[], bigint[])')
ON CONFLICT DO NOTHING;
SELECT lt.apply_privileges();
