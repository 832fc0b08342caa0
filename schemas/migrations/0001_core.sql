-- 0001_core.sql — the schema of one lienthong node.
--
-- Invariants kept here (ARCHITECTURE.md §3–§4):
--  * A change to leaf data and its outgoing delta are written in ONE transaction:
--    statement-level triggers on the leaf tables feed lt.outbox.
--  * Roll-ups are maintained incrementally by the same triggers, for every unit of
--    this node's subtree that is an ancestor of (or is) the changed row's unit,
--    using the unit tree valid on the row's reference date.
--  * Writers of leaf rows are serialised by one transaction-scoped advisory lock,
--    so outbox sequence numbers become visible in commit order: a reader that
--    resumes at "seq > last" never skips a row committed later with a smaller seq.
--  * Personal data lives in lt.case_personal, which no trigger, outbox or view
--    upstream ever reads.

-- The schema lt and lt.schema_migrations are created by the migrator itself.

-- ---------------------------------------------------------------- identity
CREATE TABLE lt.node (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    unit_code   text NOT NULL,
    has_parent  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- units
-- A unit is (code, valid_from): codes are reused by different territories.
-- valid_to is exclusive; 'infinity' while the unit exists.
CREATE TABLE lt.unit (
    code         text NOT NULL CHECK (code ~ '^[0-9]{2,5}$'),
    valid_from   date NOT NULL,
    valid_to     date NOT NULL DEFAULT 'infinity',
    level        text NOT NULL CHECK (level IN ('national', 'province', 'district', 'commune')),
    name         text NOT NULL,
    unit_type    text,
    parent_code  text,
    PRIMARY KEY (code, valid_from),
    CHECK (valid_from < valid_to)
);

-- Closure of the unit tree, one row per (descendant, ancestor, validity window),
-- depth 0 for the unit itself. Rebuilt by lt.rebuild_unit_tree().
CREATE TABLE lt.unit_ancestor (
    descendant  text NOT NULL,
    ancestor    text NOT NULL,
    depth       int  NOT NULL,
    valid_from  date NOT NULL,
    valid_to    date NOT NULL,
    PRIMARY KEY (descendant, ancestor, valid_from)
);
CREATE INDEX unit_ancestor_by_ancestor ON lt.unit_ancestor (ancestor, depth);

-- The ancestors a leaf row of `descendant` rolls up into AT THIS NODE: the unit itself
-- and its ancestors up to and including this node's unit, per validity window.
CREATE TABLE lt.rollup_path (
    descendant  text NOT NULL,
    ancestor    text NOT NULL,
    valid_from  date NOT NULL,
    valid_to    date NOT NULL,
    PRIMARY KEY (descendant, ancestor, valid_from)
);

-- ---------------------------------------------------------------- catalogue
CREATE TABLE lt.data_element (
    code         text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name_vi      text NOT NULL,
    name_en      text NOT NULL,
    aggregation  text NOT NULL DEFAULT 'sum' CHECK (aggregation IN ('sum', 'last', 'max', 'min')),
    description  text
);

-- The case categories: three child-labour categories and the 14 groups of children in
-- special circumstances of Luật Trẻ em 2016 art. 10. bit is the bit in case_record.categories;
-- roll-ups use category = bit + 1, and 0 for "any category".
CREATE TABLE lt.case_category (
    bit      smallint PRIMARY KEY CHECK (bit BETWEEN 0 AND 16),
    code     text NOT NULL UNIQUE,
    name_vi  text NOT NULL,
    name_en  text NOT NULL
);

CREATE TABLE lt.case_status (
    code     text PRIMARY KEY,
    ord      smallint NOT NULL UNIQUE,
    name_vi  text NOT NULL,
    name_en  text NOT NULL
);

-- ---------------------------------------------------------------- periods
-- Periods are DHIS2-style identifiers: 2024, 202403, 2024Q1, 2024S2, 2026-2030.
-- A value's reference date is the period's last day: it picks the unit tree the value
-- rolls up through (an annual 2025 value is reported under the tree of 31 Dec 2025).
-- Not STRICT, so that PostgreSQL can inline it (a NULL period still gives NULL): it runs
-- several times for every row a parent applies.
CREATE FUNCTION lt.period_end(p text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p ~ '^[0-9]{4}$' THEN make_date(p::int, 12, 31)
        WHEN p ~ '^[0-9]{4}(0[1-9]|1[0-2])$' THEN
            (make_date(substr(p, 1, 4)::int, substr(p, 5, 2)::int, 1) + interval '1 month' - interval '1 day')::date
        WHEN p ~ '^[0-9]{4}Q[1-4]$' THEN
            (make_date(substr(p, 1, 4)::int, substr(p, 6, 1)::int * 3 - 2, 1) + interval '3 months' - interval '1 day')::date
        WHEN p ~ '^[0-9]{4}S[12]$' THEN
            (make_date(substr(p, 1, 4)::int, substr(p, 6, 1)::int * 6 - 5, 1) + interval '6 months' - interval '1 day')::date
        WHEN p ~ '^[0-9]{4}-[0-9]{4}$' AND substr(p, 1, 4) <= substr(p, 6, 4) THEN make_date(substr(p, 6, 4)::int, 12, 31)
    END
$$;

CREATE FUNCTION lt.month_of(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- Months are counted in Vietnam's time zone (UTC+7, no daylight saving).
    SELECT to_char(extract(year FROM (ts AT TIME ZONE 'UTC') + interval '7 hours'), 'FM0000')
        || to_char(extract(month FROM (ts AT TIME ZONE 'UTC') + interval '7 hours'), 'FM00')
$$;

-- ---------------------------------------------------------------- leaf data
CREATE TABLE lt.data_value (
    id          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    unit_code   text NOT NULL,
    element     text NOT NULL,
    period      text NOT NULL,
    disagg      text NOT NULL DEFAULT '',
    value       numeric,                 -- NULL: deleted (a tombstone keeps its version)
    version     bigint NOT NULL CHECK (version > 0),
    changed_at  timestamptz NOT NULL,
    ref_date    date NOT NULL GENERATED ALWAYS AS (lt.period_end(period)) STORED,
    received_at timestamptz NOT NULL DEFAULT now(),
    via         text NOT NULL DEFAULT 'local',   -- 'local' or the child unit it arrived from
    PRIMARY KEY (unit_code, element, period, disagg),
    CHECK (lt.period_end(period) IS NOT NULL)
);

-- A case, without personal data: what may travel up.
CREATE TABLE lt.case_record (
    id               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    case_id          uuid PRIMARY KEY,
    unit_code        text NOT NULL,
    version          bigint NOT NULL CHECK (version > 0),
    changed_at       timestamptz NOT NULL,
    deleted          boolean NOT NULL DEFAULT false,
    sex              char(1) NOT NULL CHECK (sex IN ('M', 'F', 'U')),
    birth_ym         text CHECK (birth_ym ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    ethnicity        smallint CHECK (ethnicity BETWEEN 1 AND 99),
    village_code     text,
    categories       integer NOT NULL CHECK (categories > 0 AND categories < (1 << 17)),
    status           text NOT NULL REFERENCES lt.case_status (code),
    notified_at      timestamptz NOT NULL,
    assessed_at      timestamptz,
    emergency_at     timestamptz,
    plan_drafted_at  timestamptz,
    plan_approved_at timestamptz,
    reviewed_at      timestamptz,
    closed_at        timestamptz,
    services         integer NOT NULL DEFAULT 0,
    period           text NOT NULL GENERATED ALWAYS AS (lt.month_of(notified_at)) STORED,
    ref_date         date NOT NULL GENERATED ALWAYS AS (lt.period_end(lt.month_of(notified_at))) STORED,
    received_at      timestamptz NOT NULL DEFAULT now(),
    via              text NOT NULL DEFAULT 'local'
);

-- Personal data: the commune only. Nothing reads it but the commune's own officers.
CREATE TABLE lt.case_personal (
    case_id        uuid PRIMARY KEY REFERENCES lt.case_record (case_id),
    full_name      text,
    guardian_name  text,
    address        text,
    phone          text,
    notes          text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- roll-ups
CREATE TABLE lt.rollup_value (
    unit_code   text NOT NULL,
    element     text NOT NULL,
    period      text NOT NULL,
    disagg      text NOT NULL,
    total       numeric NOT NULL,
    n_rows      bigint NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (unit_code, element, period, disagg)
);

CREATE TABLE lt.rollup_case (
    unit_code   text NOT NULL,
    period      text NOT NULL,           -- month of notification, YYYYMM
    category    smallint NOT NULL,       -- 0: any; bit + 1 otherwise
    status      text NOT NULL,
    n           bigint NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (unit_code, period, category, status)
);

-- ---------------------------------------------------------------- links
-- Child side: the delta stream to the parent. seq is this hop's sequence.
CREATE TABLE lt.outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       smallint NOT NULL CHECK (kind IN (1, 2)),   -- 1 data value, 2 case
    row_id     bigint NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lt.upstream (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    parent_unit    text,
    acked_seq      bigint NOT NULL DEFAULT 0,
    acked_at       timestamptz,
    last_contact   timestamptz,
    resyncs        bigint NOT NULL DEFAULT 0,
    state          text NOT NULL DEFAULT 'idle',
    last_error     text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO lt.upstream DEFAULT VALUES;

-- Parent side: one row per child link.
CREATE TABLE lt.child_link (
    child_unit        text PRIMARY KEY,
    last_applied_seq  bigint NOT NULL DEFAULT 0,
    applied_rows      bigint NOT NULL DEFAULT 0,
    rejected_rows     bigint NOT NULL DEFAULT 0,
    batches           bigint NOT NULL DEFAULT 0,
    first_seen        timestamptz NOT NULL DEFAULT now(),
    last_batch_at     timestamptz,
    last_contact      timestamptz,
    child_max_seq     bigint,
    state             text NOT NULL DEFAULT 'new',
    last_error        text
);

-- Records a child sent that this node refused, kept for audit and repair.
CREATE TABLE lt.rejected_delta (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    child_unit   text NOT NULL,
    seq          bigint NOT NULL,
    code         int NOT NULL,
    reason       text NOT NULL,
    record       jsonb NOT NULL
);
