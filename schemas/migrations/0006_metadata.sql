-- 0006_metadata.sql — the metadata catalogue and its down-flow: data elements,
-- indicators, disaggregations, periods, plans and targets, data sets and reporting
-- deadlines, case-management deadlines, services and holidays; working days; and the
-- versioned change log that carries all of it from the top node to every node below.
--
-- Invariants kept here:
--  * The catalogue is edited at the top node only (lt.node.has_parent = false), through
--    lt.meta_put / lt.meta_delete; every change appends to lt.meta_change in the same
--    transaction. A node below changes its catalogue only through lt.meta_apply, with
--    what its parent sent. The one exception is an approval decision (kind 'approval'),
--    which any node makes for a unit of its subtree (0007, lt.decide).
--  * lt.meta_change is compacted: one row per (kind, key), the latest, so the log is
--    also the snapshot. A node that asks for everything after version 0 receives every
--    live catalogue row once, plus the tombstones (doc NULL) of deleted ones.
--  * Versions are numbered per node, like the up-flow's sequence per hop: the top
--    numbers its edits; a node below numbers, in its own log, what it applied from its
--    parent and what it decided itself, and remembers in lt.meta_state the last version
--    of its PARENT's log it applied. So one cursor per link suffices even though a
--    district's log merges the top's changes with its own approvals.
--  * Writers of lt.meta_change take lt.meta_lock(): versions become visible in commit
--    order, so a reader resuming at "version > last" never skips a change.
--  * No foreign keys between catalogue tables: compaction may deliver a target before
--    the plan it belongs to. The top validates references when it edits (lt.meta_check).

CREATE FUNCTION lt.meta_lock() RETURNS void
LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(7455100002) $$;

-- ---------------------------------------------------------------- time helpers
-- Vietnam's civil time is UTC+7 without daylight saving (as lt.month_of).
CREATE FUNCTION lt.vn_date(ts timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ((ts AT TIME ZONE 'UTC') + interval '7 hours')::date
$$;

-- The instant a Vietnamese calendar day begins.
CREATE FUNCTION lt.vn_midnight(d date) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (d::timestamp - interval '7 hours') AT TIME ZONE 'UTC'
$$;

-- ---------------------------------------------------------------- periods
CREATE FUNCTION lt.period_type(p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN lt.period_end(p) IS NULL THEN NULL
        WHEN p ~ '^[0-9]{4}$' THEN 'year'
        WHEN p ~ '^[0-9]{6}$' THEN 'month'
        WHEN p ~ 'Q' THEN 'quarter'
        WHEN p ~ 'S' THEN 'half'
        ELSE 'plan'
    END
$$;

CREATE FUNCTION lt.period_start(p text) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE lt.period_type(p)
        WHEN 'year' THEN make_date(p::int, 1, 1)
        WHEN 'month' THEN make_date(substr(p, 1, 4)::int, substr(p, 5, 2)::int, 1)
        WHEN 'quarter' THEN make_date(substr(p, 1, 4)::int, substr(p, 6, 1)::int * 3 - 2, 1)
        WHEN 'half' THEN make_date(substr(p, 1, 4)::int, substr(p, 6, 1)::int * 6 - 5, 1)
        WHEN 'plan' THEN make_date(substr(p, 1, 4)::int, 1, 1)
    END
$$;

-- The periods officers report on: every calendar month, quarter, half and year from
-- 2000 to 2060 (generated here, identical at every node), and the multi-year plan
-- periods of the catalogue (kind 'period', which flow down).
CREATE TABLE lt.period (
    code         text PRIMARY KEY CHECK (lt.period_type(code) IS NOT NULL),
    period_type  text NOT NULL CHECK (period_type IN ('month', 'quarter', 'half', 'year', 'plan')),
    start_date   date NOT NULL,
    end_date     date NOT NULL,
    name_vi      text NOT NULL,
    name_en      text NOT NULL,
    CHECK (period_type = lt.period_type(code) AND start_date = lt.period_start(code)
           AND end_date = lt.period_end(code))
);
CREATE INDEX period_by_dates ON lt.period (start_date, end_date);

INSERT INTO lt.period (code, period_type, start_date, end_date, name_vi, name_en)
SELECT p, lt.period_type(p), lt.period_start(p), lt.period_end(p), vi, en
  FROM (
    SELECT y::text AS p, 'Năm ' || y AS vi, 'Year ' || y AS en FROM generate_series(2000, 2060) y
    UNION ALL
    SELECT y || 'Q' || q, 'Quý ' || (ARRAY['I', 'II', 'III', 'IV'])[q] || '/' || y, 'Q' || q || ' ' || y
      FROM generate_series(2000, 2060) y, generate_series(1, 4) q
    UNION ALL
    SELECT y || 'S' || s, (ARRAY['6 tháng đầu năm ', '6 tháng cuối năm '])[s] || y,
           (ARRAY['First half ', 'Second half '])[s] || y
      FROM generate_series(2000, 2060) y, generate_series(1, 2) s
    UNION ALL
    SELECT y || lpad(m::text, 2, '0'), 'Tháng ' || m || '/' || y, to_char(make_date(y, m, 1), 'FMMonth YYYY')
      FROM generate_series(2000, 2060) y, generate_series(1, 12) m
  ) g;

-- ---------------------------------------------------------------- catalogue tables
-- Data elements exist since 0001; what the indicators need in addition: the period type
-- the element is collected for (values of other period types are not used by the
-- indicators; NULL: any), and the disaggregation dimension its values are split by.
ALTER TABLE lt.data_element
    ADD COLUMN period_type text CHECK (period_type IN ('month', 'quarter', 'half', 'year')),
    ADD COLUMN disaggregation text;

UPDATE lt.data_element SET period_type = CASE
        WHEN aggregation = 'last' THEN 'year'
        WHEN code IN ('CHILD_INJURIES', 'CHILD_INJURY_DEATHS') THEN 'month'
        ELSE 'quarter' END;
UPDATE lt.data_element SET disaggregation = 'sex' WHERE code = 'CHILDREN_INF';

-- One option of a disaggregation dimension; a value's disagg is "dimension=option".
CREATE TABLE lt.disaggregation (
    dimension  text NOT NULL CHECK (dimension ~ '^[a-z_]{1,32}$'),
    option     text NOT NULL CHECK (option ~ '^[A-Za-z0-9_+-]{1,32}$'),
    sort_order int NOT NULL DEFAULT 0,
    name_vi    text NOT NULL,
    name_en    text NOT NULL,
    PRIMARY KEY (dimension, option)
);

-- The services bitmask of lt.case_record.services: bit -> service.
CREATE TABLE lt.service (
    code     text PRIMARY KEY CHECK (code ~ '^[a-z_]{1,32}$'),
    bit      smallint NOT NULL UNIQUE CHECK (bit BETWEEN 0 AND 30),
    name_vi  text NOT NULL,
    name_en  text NOT NULL
);

-- An indicator is numerator / denominator, each a sum of terms separated by "+":
--   de:ELEMENT            the element's value over the period (aggregation-aware)
--   cases:CATS            cases notified during the period
--   open:CATS             cases open at some time during the period
--   timely:CATS           cases notified during the period whose steps met every deadline
--   due:CATS              cases notified during the period whose deadlines are settled
--                         (on time or late; not those still within a deadline)
--   served:CATS:SERVICES  cases open during the period that received any of SERVICES
-- CATS: case category codes joined by "|", or "*" for any; SERVICES likewise (service codes).
-- ind_type: percent (100 x num / den), per_1000 (1000 x num / den), count (num).
CREATE TABLE lt.indicator (
    code         text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_]{1,64}$'),
    sort_order   int NOT NULL DEFAULT 0,
    ind_type     text NOT NULL CHECK (ind_type IN ('percent', 'per_1000', 'count')),
    name_vi      text NOT NULL,
    name_en      text NOT NULL,
    numerator    text NOT NULL,
    denominator  text,
    source       text,
    description  text,
    CHECK ((ind_type = 'count') = (denominator IS NULL))
);

CREATE TABLE lt.plan (
    code       text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name_vi    text NOT NULL,
    name_en    text NOT NULL,
    period     text NOT NULL CHECK (lt.period_end(period) IS NOT NULL),
    issued_by  text,             -- the unit that issued the plan (informative)
    source     text
);

-- A target of a plan for an indicator, a scope and a period. scope is a level
-- ('national', 'province', 'district', 'commune'), '*' for every level, or one unit's
-- code. A target applies to its own period and to every year inside it.
CREATE TABLE lt.target (
    plan        text NOT NULL,
    indicator   text NOT NULL,
    scope       text NOT NULL CHECK (scope IN ('national', 'province', 'district', 'commune', '*')
                                     OR scope ~ '^[0-9]{2,5}$'),
    period      text NOT NULL CHECK (lt.period_end(period) IS NOT NULL),
    comparison  text NOT NULL CHECK (comparison IN ('<', '<=', '>=', '>')),
    value       numeric NOT NULL,
    note        text,
    PRIMARY KEY (plan, indicator, scope, period)
);

-- A data set is what a unit submits for a period (0007): its elements (NULL: every
-- element), whether its figures include case-derived ones, the levels that report it,
-- and the periods it is expected for.
CREATE TABLE lt.data_set (
    code            text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_]{1,32}$'),
    name_vi         text NOT NULL,
    name_en         text NOT NULL,
    period_type     text NOT NULL CHECK (period_type IN ('month', 'quarter', 'half', 'year')),
    levels          text[] NOT NULL,
    elements        text[],
    includes_cases  boolean NOT NULL DEFAULT false,
    active_from     date NOT NULL,
    active_to       date,
    source          text
);

-- When a data set is due for a period of a type:
--   fixed:     before due_month/due_day of the period's last year (exclusive: "trước ngày")
--   after_end: within days_after days after the period's last day (inclusive)
CREATE TABLE lt.deadline (
    data_set     text NOT NULL,
    period_type  text NOT NULL CHECK (period_type IN ('month', 'quarter', 'half', 'year')),
    rule         text NOT NULL CHECK (rule IN ('fixed', 'after_end')),
    due_month    smallint CHECK (due_month BETWEEN 1 AND 12),
    due_day      smallint CHECK (due_day BETWEEN 1 AND 31),
    days_after   int CHECK (days_after >= 0),
    source       text,
    PRIMARY KEY (data_set, period_type),
    CHECK ((rule = 'fixed') = (due_month IS NOT NULL AND due_day IS NOT NULL)),
    CHECK ((rule = 'after_end') = (days_after IS NOT NULL))
);

-- Days that are not ordinary: 'holiday' (a public holiday of the Labour Code),
-- 'day_off' (a compensatory or swapped day off), 'workday' (a weekend day worked in
-- exchange for a day off).
CREATE TABLE lt.holiday (
    day      date PRIMARY KEY,
    kind     text NOT NULL CHECK (kind IN ('holiday', 'day_off', 'workday')),
    name_vi  text NOT NULL,
    name_en  text NOT NULL,
    source   text
);

-- The case-management deadlines (NĐ 56/2017): step must happen within amount units
-- after from_step. required = false: checked only when the step was recorded (an
-- emergency intervention happens only when the case needs one).
CREATE TABLE lt.case_deadline (
    step       text PRIMARY KEY CHECK (step IN ('assessed', 'emergency', 'plan_drafted', 'plan_approved',
                                                'reviewed', 'closed')),
    from_step  text NOT NULL CHECK (from_step IN ('notified', 'assessed', 'emergency', 'plan_drafted',
                                                  'plan_approved', 'reviewed')),
    amount     numeric NOT NULL CHECK (amount > 0),
    unit       text NOT NULL CHECK (unit IN ('hours', 'days', 'working_days')),
    required   boolean NOT NULL,
    name_vi    text NOT NULL,
    name_en    text NOT NULL,
    source     text
);

-- ---------------------------------------------------------------- working days
-- Monday-to-Friday days from 1900-01-01 (a Monday) up to d inclusive.
CREATE FUNCTION lt.weekday_index(d date) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ((d - date '1900-01-01') / 7) * 5 + least((d - date '1900-01-01') % 7 + 1, 5)
$$;

-- Working days d with a < d <= b (negative when b < a): weekdays, minus holidays and
-- days off that fall on weekdays, plus weekend days worked in exchange. PL/pgSQL, so
-- its one query is planned once per session (it runs for every case deadline).
CREATE FUNCTION lt.working_days_between(a date, b date) RETURNS int
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    lo date := least(a, b);
    hi date := greatest(a, b);
    off bigint;
    worked bigint;
BEGIN
    SELECT count(*) FILTER (WHERE h.kind <> 'workday' AND extract(isodow FROM h.day) < 6),
           count(*) FILTER (WHERE h.kind = 'workday' AND extract(isodow FROM h.day) >= 6)
      INTO off, worked
      FROM lt.holiday h
     WHERE h.day > lo AND h.day <= hi;
    RETURN ((lt.weekday_index(hi) - lt.weekday_index(lo) - off + worked) * sign(b - a))::int;
END $$;

CREATE FUNCTION lt.is_working_day(d date) RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT lt.working_days_between(d - 1, d) = 1
$$;

-- ---------------------------------------------------------------- indicator terms
-- The terms of an indicator expression, in order. Raises on a malformed expression;
-- whether the codes exist is lt.meta_check's business (at the top only).
CREATE FUNCTION lt.parse_terms(expr text)
RETURNS TABLE (pos int, kind text, element text, cats text[], services text[])
LANGUAGE plpgsql IMMUTABLE ROWS 2 AS $$
DECLARE
    t text;
    parts text[];
    i int := 0;
BEGIN
    IF expr IS NULL THEN
        RETURN;
    END IF;
    FOREACH t IN ARRAY regexp_split_to_array(btrim(expr), '\s*\+\s*') LOOP
        i := i + 1;
        parts := string_to_array(t, ':');
        pos := i;
        kind := parts[1];
        element := NULL;
        cats := NULL;
        services := NULL;
        IF kind = 'de' AND array_length(parts, 1) = 2 AND parts[2] <> '' THEN
            element := parts[2];
        ELSIF kind IN ('cases', 'open', 'timely', 'due') AND array_length(parts, 1) = 2 AND parts[2] <> '' THEN
            cats := CASE WHEN parts[2] = '*' THEN NULL ELSE string_to_array(parts[2], '|') END;
        ELSIF kind = 'served' AND array_length(parts, 1) = 3 AND parts[2] <> '' AND parts[3] <> '' THEN
            cats := CASE WHEN parts[2] = '*' THEN NULL ELSE string_to_array(parts[2], '|') END;
            services := CASE WHEN parts[3] = '*' THEN NULL ELSE string_to_array(parts[3], '|') END;
        ELSE
            RAISE EXCEPTION 'indicator term "%" is not one of de:ELEMENT, cases:CATS, open:CATS, timely:CATS, due:CATS, served:CATS:SERVICES', t
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;

-- ---------------------------------------------------------------- the change log
CREATE SEQUENCE lt.meta_change_seq;

CREATE TABLE lt.meta_change (
    version     bigint PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('data_element', 'indicator', 'target', 'deadline', 'holiday',
                                              'plan', 'period', 'approval', 'data_set', 'disaggregation',
                                              'service', 'case_deadline')),
    key         text NOT NULL,
    doc         jsonb,               -- NULL: deleted
    scope_unit  text,                -- NULL: every node; else nodes whose subtree holds it
    changed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, key)
);

-- applied_version counts in the PARENT's numbering (see the header).
CREATE TABLE lt.meta_state (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    applied_version  bigint NOT NULL DEFAULT 0,
    applied_at       timestamptz,
    changes_applied  bigint NOT NULL DEFAULT 0
);
INSERT INTO lt.meta_state DEFAULT VALUES;

-- kind -> table, and the columns whose values, joined by '/', are a row's key.
CREATE FUNCTION lt.meta_tbl(p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_kind IN ('data_element', 'indicator', 'plan', 'period', 'data_set', 'service',
                                'disaggregation', 'deadline', 'holiday', 'case_deadline', 'target')
                THEN 'lt.' || p_kind END
$$;

CREATE FUNCTION lt.meta_keycols(p_kind text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind
        WHEN 'disaggregation' THEN ARRAY['dimension', 'option']
        WHEN 'deadline' THEN ARRAY['data_set', 'period_type']
        WHEN 'holiday' THEN ARRAY['day']
        WHEN 'case_deadline' THEN ARRAY['step']
        WHEN 'target' THEN ARRAY['plan', 'indicator', 'scope', 'period']
        WHEN 'approval' THEN ARRAY['unit_code', 'data_set', 'period']
        ELSE CASE WHEN lt.meta_tbl(p_kind) IS NOT NULL THEN ARRAY['code'] END
    END
$$;

-- NULL when a key column is missing.
CREATE FUNCTION lt.meta_key(p_kind text, p_doc jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind
        WHEN 'disaggregation' THEN (p_doc ->> 'dimension') || '/' || (p_doc ->> 'option')
        WHEN 'deadline' THEN (p_doc ->> 'data_set') || '/' || (p_doc ->> 'period_type')
        WHEN 'holiday' THEN p_doc ->> 'day'
        WHEN 'case_deadline' THEN p_doc ->> 'step'
        WHEN 'target' THEN (p_doc ->> 'plan') || '/' || (p_doc ->> 'indicator') || '/' || (p_doc ->> 'scope')
                           || '/' || (p_doc ->> 'period')
        WHEN 'approval' THEN (p_doc ->> 'unit_code') || '/' || (p_doc ->> 'data_set') || '/' || (p_doc ->> 'period')
        ELSE p_doc ->> 'code'
    END
$$;

-- "t.col1::text = split_part($2, '/', 1) AND ...": a row of the kind's table by key ($2).
CREATE FUNCTION lt.meta_where(p_kind text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(format('t.%I::text = split_part($2, ''/'', %s)', k, o), ' AND ' ORDER BY o)
      FROM unnest(lt.meta_keycols(p_kind)) WITH ORDINALITY AS u(k, o)
$$;

-- Which nodes a change is for: a unit-scoped target goes only to the nodes whose
-- subtree holds the unit; an approval only towards the unit it decides.
CREATE FUNCTION lt.meta_scope(p_kind text, p_doc jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_kind = 'target' AND p_doc ->> 'scope' ~ '^[0-9]+$' THEN p_doc ->> 'scope'
        WHEN p_kind = 'approval' THEN p_doc ->> 'unit_code'
    END
$$;

-- The row as the catalogue holds it: typed and complete, the form every node logs.
CREATE FUNCTION lt.meta_canonical(p_kind text, p_doc jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    IF p_kind = 'approval' THEN
        RETURN p_doc;
    END IF;
    IF p_kind = 'period' THEN
        -- a period's type and dates follow from its code
        p_doc := p_doc || jsonb_build_object('period_type', lt.period_type(p_doc ->> 'code'),
                                             'start_date', lt.period_start(p_doc ->> 'code'),
                                             'end_date', lt.period_end(p_doc ->> 'code'));
    END IF;
    EXECUTE format('SELECT to_jsonb(jsonb_populate_record(NULL::%s, $1))', lt.meta_tbl(p_kind))
       INTO r USING p_doc;
    RETURN r;
END $$;

-- Write one change into the catalogue tables (no log, no checks): the one code path
-- for an edit at the top and for a change applied from the parent.
CREATE FUNCTION lt.meta_row_apply(p_kind text, p_key text, p_doc jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    tbl text := lt.meta_tbl(p_kind);
    cols text;
    excl text;
BEGIN
    IF p_kind = 'approval' THEN
        PERFORM lt.approval_apply(p_key, p_doc);     -- 0007
        RETURN;
    END IF;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'unknown metadata kind "%"', p_kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_doc IS NULL OR jsonb_typeof(p_doc) = 'null' THEN
        EXECUTE format('DELETE FROM %s t WHERE %s', tbl, lt.meta_where(p_kind)) USING p_kind, p_key;
        RETURN;
    END IF;
    IF lt.meta_key(p_kind, p_doc) IS DISTINCT FROM p_key THEN
        RAISE EXCEPTION 'metadata % "%": the document''s key is "%"', p_kind, p_key, lt.meta_key(p_kind, p_doc)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
           string_agg('EXCLUDED.' || quote_ident(attname), ', ' ORDER BY attnum)
      INTO cols, excl
      FROM pg_attribute
     WHERE attrelid = tbl::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    EXECUTE format('INSERT INTO %1$s AS t (%2$s) SELECT %2$s FROM jsonb_populate_record(NULL::%1$s, $1) '
                   'ON CONFLICT (%3$s) DO UPDATE SET (%2$s) = ROW(%4$s)',
                   tbl, cols, (SELECT string_agg(quote_ident(k), ', ') FROM unnest(lt.meta_keycols(p_kind)) k), excl)
    USING p_doc;
END $$;

-- Append one change to this node's log, replacing the previous change of the same
-- (kind, key). The caller holds lt.meta_lock(). Returns the new version.
CREATE FUNCTION lt.meta_log(p_kind text, p_key text, p_doc jsonb, p_scope text) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO lt.meta_change AS m (version, kind, key, doc, scope_unit, changed_at)
    VALUES (nextval('lt.meta_change_seq'), p_kind, p_key, p_doc, p_scope, now())
    ON CONFLICT (kind, key) DO UPDATE
       SET version = EXCLUDED.version, doc = EXCLUDED.doc, scope_unit = EXCLUDED.scope_unit,
           changed_at = EXCLUDED.changed_at
    RETURNING version
$$;

CREATE FUNCTION lt.meta_require_top() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lt.node WHERE NOT has_parent) THEN
        RAISE EXCEPTION 'the metadata catalogue is edited at the top node only: this node (%) receives it from its parent',
            coalesce((SELECT unit_code FROM lt.node), 'not initialised') USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;

-- Validation at the top, before a change is logged: references between catalogue rows
-- and the things table constraints cannot say. p_doc NULL: a deletion of p_key.
CREATE FUNCTION lt.meta_check(p_kind text, p_key text, p_doc jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    bad text;
    used text;
BEGIN
    IF p_doc IS NULL THEN
        used := CASE p_kind
            WHEN 'data_element' THEN (SELECT string_agg(i.code, ', ') FROM lt.indicator i
                                       WHERE EXISTS (SELECT 1 FROM lt.parse_terms(i.numerator || coalesce(' + ' || i.denominator, '')) x
                                                      WHERE x.element = p_key))
            WHEN 'indicator' THEN (SELECT string_agg(DISTINCT plan, ', ') FROM lt.target WHERE indicator = p_key)
            WHEN 'plan' THEN (SELECT string_agg(DISTINCT indicator, ', ') FROM lt.target WHERE plan = p_key)
            WHEN 'data_set' THEN (SELECT string_agg(period_type, ', ') FROM lt.deadline WHERE data_set = p_key)
            WHEN 'period' THEN CASE WHEN lt.period_type(p_key) <> 'plan' THEN 'the calendar' END
        END;
        IF used IS NOT NULL THEN
            RAISE EXCEPTION 'cannot delete % "%": used by %', p_kind, p_key, used
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN;
    END IF;
    CASE p_kind
    WHEN 'indicator' THEN
        FOR t IN SELECT * FROM lt.parse_terms(p_doc ->> 'numerator')
                 UNION ALL SELECT * FROM lt.parse_terms(p_doc ->> 'denominator') LOOP
            bad := coalesce(
                CASE WHEN t.element IS NOT NULL AND NOT EXISTS (SELECT 1 FROM lt.data_element WHERE code = t.element)
                     THEN format('unknown data element "%s"', t.element) END,
                (SELECT format('unknown case category "%s"', c) FROM unnest(t.cats) c
                  WHERE NOT EXISTS (SELECT 1 FROM lt.case_category WHERE code = c) LIMIT 1),
                (SELECT format('unknown service "%s"', s) FROM unnest(t.services) s
                  WHERE NOT EXISTS (SELECT 1 FROM lt.service WHERE code = s) LIMIT 1));
            EXIT WHEN bad IS NOT NULL;
        END LOOP;
    WHEN 'target' THEN
        bad := CASE
            WHEN NOT EXISTS (SELECT 1 FROM lt.plan WHERE code = p_doc ->> 'plan')
                THEN format('unknown plan "%s"', p_doc ->> 'plan')
            WHEN NOT EXISTS (SELECT 1 FROM lt.indicator WHERE code = p_doc ->> 'indicator')
                THEN format('unknown indicator "%s"', p_doc ->> 'indicator')
            WHEN p_doc ->> 'scope' ~ '^[0-9]+$' AND NOT EXISTS (SELECT 1 FROM lt.unit WHERE code = p_doc ->> 'scope')
                THEN format('unknown unit "%s"', p_doc ->> 'scope')
        END;
    WHEN 'data_set' THEN
        bad := coalesce(
            (SELECT format('unknown data element "%s"', e)
               FROM jsonb_array_elements_text(CASE jsonb_typeof(p_doc -> 'elements') WHEN 'array'
                                                   THEN p_doc -> 'elements' ELSE '[]' END) e
              WHERE NOT EXISTS (SELECT 1 FROM lt.data_element WHERE code = e) LIMIT 1),
            (SELECT format('unknown level "%s"', l)
               FROM jsonb_array_elements_text(CASE jsonb_typeof(p_doc -> 'levels') WHEN 'array'
                                                   THEN p_doc -> 'levels' ELSE '[]' END) l
              WHERE l NOT IN ('national', 'province', 'district', 'commune') LIMIT 1));
    WHEN 'deadline' THEN
        IF NOT EXISTS (SELECT 1 FROM lt.data_set WHERE code = p_doc ->> 'data_set') THEN
            bad := format('unknown data set "%s"', p_doc ->> 'data_set');
        END IF;
    WHEN 'data_element' THEN
        IF p_doc ->> 'disaggregation' IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM lt.disaggregation WHERE dimension = p_doc ->> 'disaggregation') THEN
            bad := format('unknown disaggregation "%s"', p_doc ->> 'disaggregation');
        END IF;
    WHEN 'period' THEN
        IF lt.period_type(p_doc ->> 'code') IS DISTINCT FROM 'plan' THEN
            bad := 'only multi-year plan periods (YYYY-YYYY) are catalogue entries; calendar periods are built in';
        END IF;
    ELSE
        NULL;
    END CASE;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '% "%": %', p_kind, p_key, bad USING ERRCODE = 'invalid_parameter_value';
    END IF;
END $$;

-- ---------------------------------------------------------------- editing (top node)
-- Create or replace one catalogue row. Returns the change's version, or NULL when the
-- row already held exactly this (loading the same catalogue twice logs nothing).
CREATE FUNCTION lt.meta_put(p_kind text, p_doc jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb;
    k text;
    old jsonb;
BEGIN
    PERFORM lt.meta_require_top();
    IF lt.meta_tbl(p_kind) IS NULL THEN
        RAISE EXCEPTION 'metadata kind "%" cannot be edited with meta_put', p_kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lt.meta_lock();
    doc := lt.meta_canonical(p_kind, p_doc);
    k := lt.meta_key(p_kind, doc);
    IF k IS NULL THEN
        RAISE EXCEPTION '% needs its key columns (%)', p_kind, array_to_string(lt.meta_keycols(p_kind), ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT to_jsonb(t) FROM %s t WHERE %s', lt.meta_tbl(p_kind), lt.meta_where(p_kind))
       INTO old USING p_kind, k;
    IF old = doc AND EXISTS (SELECT 1 FROM lt.meta_change WHERE kind = p_kind AND key = k) THEN
        RETURN NULL;
    END IF;
    PERFORM lt.meta_check(p_kind, k, doc);
    PERFORM lt.meta_row_apply(p_kind, k, doc);
    RETURN lt.meta_log(p_kind, k, doc, lt.meta_scope(p_kind, doc));
END $$;

-- Delete one catalogue row by key. Returns the tombstone's version, or NULL when there
-- was nothing to delete.
CREATE FUNCTION lt.meta_delete(p_kind text, p_key text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    old jsonb;
BEGIN
    PERFORM lt.meta_require_top();
    IF lt.meta_tbl(p_kind) IS NULL THEN
        RAISE EXCEPTION 'metadata kind "%" cannot be deleted with meta_delete', p_kind USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lt.meta_lock();
    EXECUTE format('SELECT to_jsonb(t) FROM %s t WHERE %s', lt.meta_tbl(p_kind), lt.meta_where(p_kind))
       INTO old USING p_kind, p_key;
    IF old IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM lt.meta_check(p_kind, p_key, NULL);
    PERFORM lt.meta_row_apply(p_kind, p_key, NULL);
    -- the tombstone keeps the row's scope, so it reaches the nodes that hold the row
    RETURN lt.meta_log(p_kind, p_key, NULL, lt.meta_scope(p_kind, old));
END $$;

-- Load many rows of one kind (the CLI's `meta load`): p_rows is an array of objects
-- whose values may be strings (from a CSV). With p_replace, rows of that kind that are
-- not in p_rows are deleted. Returns the number of changes logged.
CREATE FUNCTION lt.meta_load(p_kind text, p_rows jsonb, p_replace boolean) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    k text;
    keys text[] := '{}';
    old_keys text[];
    n int := 0;
BEGIN
    PERFORM lt.meta_require_top();
    FOR r IN SELECT value FROM jsonb_array_elements(p_rows) LOOP
        -- an empty CSV field is "no value"
        r := (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(r) WHERE value <> '""'::jsonb);
        IF lt.meta_put(p_kind, r) IS NOT NULL THEN
            n := n + 1;
        END IF;
        keys := keys || lt.meta_key(p_kind, lt.meta_canonical(p_kind, r));
    END LOOP;
    IF n > 0 THEN
        EXECUTE format('ANALYZE %s', lt.meta_tbl(p_kind));
    END IF;
    IF p_replace THEN
        EXECUTE format('SELECT array_agg(lt.meta_key($1, to_jsonb(t))) FROM %s t', lt.meta_tbl(p_kind))
           INTO old_keys USING p_kind;
        FOREACH k IN ARRAY coalesce(old_keys, '{}') LOOP
            IF NOT k = ANY (keys) AND (p_kind <> 'period' OR lt.period_type(k) = 'plan') THEN
                IF lt.meta_delete(p_kind, k) IS NOT NULL THEN
                    n := n + 1;
                END IF;
            END IF;
        END LOOP;
    END IF;
    RETURN n;
END $$;

-- A target, the common edit: scope is a level, '*' or a unit code; p_value NULL deletes it.
CREATE FUNCTION lt.set_target(p_plan text, p_indicator text, p_scope text, p_period text,
                              p_comparison text, p_value numeric, p_note text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql AS $$
    SELECT CASE WHEN p_value IS NULL
        THEN lt.meta_delete('target', concat_ws('/', p_plan, p_indicator, p_scope, p_period))
        ELSE lt.meta_put('target', jsonb_build_object('plan', p_plan, 'indicator', p_indicator, 'scope', p_scope,
                                                      'period', p_period, 'comparison', p_comparison,
                                                      'value', p_value, 'note', p_note))
    END
$$;

-- The catalogue tables are small and change in bursts, below autovacuum's thresholds:
-- without fresh statistics the planner misjudges the report views by orders of magnitude.
CREATE FUNCTION lt.meta_analyze() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    ANALYZE lt.data_element, lt.indicator, lt.target, lt.plan, lt.data_set, lt.deadline, lt.holiday,
            lt.case_deadline, lt.service, lt.disaggregation, lt.period;
END $$;

-- ---------------------------------------------------------------- transport
-- Parent side: the changes child p_child has not seen, oldest first: those for every
-- node and those scoped to a unit of the child's subtree (in any period).
CREATE FUNCTION lt.meta_changes_since(p_after bigint, p_child text, p_limit int)
RETURNS TABLE (version bigint, kind text, key text, doc jsonb, scope_unit text)
LANGUAGE sql STABLE AS $$
    SELECT m.version, m.kind, m.key, m.doc, m.scope_unit
      FROM lt.meta_change m
     WHERE m.version > p_after
       AND (m.scope_unit IS NULL
            OR EXISTS (SELECT 1 FROM lt.unit_ancestor a
                        WHERE a.descendant = m.scope_unit AND a.ancestor = p_child))
     ORDER BY m.version
     LIMIT p_limit
$$;

-- Child side: apply what the parent sent (an array of {version, kind, key, doc,
-- scope_unit}, versions in the parent's numbering), in one transaction, in version
-- order; versions at or below the applied one are skipped, so a repeat is harmless.
-- Each change lands in the catalogue and in this node's own log (its own numbering),
-- for the nodes below. Returns the parent version now applied.
CREATE FUNCTION lt.meta_apply(p_changes jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    applied bigint;
    ch record;
    n bigint := 0;
BEGIN
    IF jsonb_typeof(p_changes) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'meta_apply takes a JSON array of changes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lt.meta_lock();
    SELECT applied_version INTO applied FROM lt.meta_state FOR UPDATE;
    -- approvals applied here come from above: they must not travel back up (0007)
    PERFORM set_config('lt.applying_meta', 'on', true);
    FOR ch IN SELECT x.version, x.kind, x.key, x.doc, x.scope_unit
                FROM jsonb_to_recordset(p_changes) AS x(version bigint, kind text, key text, doc jsonb, scope_unit text)
               ORDER BY x.version LOOP
        IF ch.version IS NULL OR ch.kind IS NULL OR ch.key IS NULL THEN
            RAISE EXCEPTION 'a metadata change needs version, kind and key: %', row_to_json(ch)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        CONTINUE WHEN ch.version <= applied;
        PERFORM lt.meta_row_apply(ch.kind, ch.key, CASE WHEN jsonb_typeof(ch.doc) = 'null' THEN NULL ELSE ch.doc END);
        PERFORM lt.meta_log(ch.kind, ch.key, CASE WHEN jsonb_typeof(ch.doc) = 'null' THEN NULL ELSE ch.doc END,
                            ch.scope_unit);
        applied := ch.version;
        n := n + 1;
    END LOOP;
    PERFORM set_config('lt.applying_meta', 'off', true);
    IF n > 0 THEN
        PERFORM lt.meta_analyze();
    END IF;
    UPDATE lt.meta_state
       SET applied_version = applied, changes_applied = changes_applied + n,
           applied_at = CASE WHEN n > 0 THEN now() ELSE applied_at END;
    RETURN applied;
END $$;

-- This node's position in its parent's log (what it sends when it asks for changes).
CREATE FUNCTION lt.meta_version() RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT applied_version FROM lt.meta_state $$;

-- The highest version this node's own log has issued. A child whose position is above
-- it is talking to a parent restored from an older backup: it must ask again from 0.
CREATE FUNCTION lt.meta_high() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END FROM lt.meta_change_seq s
$$;

-- Forget the position in the parent's log (a new parent, or a restored one): the next
-- request starts from 0 and re-applies the parent's whole snapshot, harmlessly.
CREATE FUNCTION lt.meta_reset() RETURNS void
LANGUAGE sql AS $$ UPDATE lt.meta_state SET applied_version = 0 $$;
