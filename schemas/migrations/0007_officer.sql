-- 0007_officer.sql — what officers review: report submissions and their approval,
-- locks on approved periods, case-management timeliness, and the read interface
-- (schema lt_report, documented in schemas/VIEWS.md).
--
-- Invariants kept here:
--  * A submission is a leaf row of the unit that submits (lt.submit), versioned like a
--    data value, and travels up through the outbox (kind 3) in the transaction that
--    writes it. A decision (lt.decide) is made by an ancestor: it bumps the version, so
--    it travels up the same way, and it is logged as a metadata change of kind
--    'approval' scoped to the unit, so it travels down to the unit. Applied from above
--    (lt.meta_apply), it does not travel back up.
--  * An approved (unit, data set, period) is locked: local writes of that unit's values
--    of the data set's elements inside the period are refused, and so are changes to
--    the recorded history (dates up to the period's end, categories) of its cases
--    notified inside the period, until an ancestor reopens it.
--  * Indicators are sum(numerator) / sum(denominator) over the subtree, from the
--    roll-ups (lt.rollup_value) and the case rows this node holds: never an average of
--    ratios. Case-derived counts come from lt.case_record, attributed to units through
--    lt.rollup_path exactly like lt.rollup_case.

-- ---------------------------------------------------------------- submissions
CREATE TABLE lt.submission (
    id                  bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    unit_code           text NOT NULL,
    data_set            text NOT NULL,
    period              text NOT NULL CHECK (lt.period_end(period) IS NOT NULL),
    submitted_at        timestamptz NOT NULL,      -- the latest submission
    first_submitted_at  timestamptz NOT NULL,      -- the first one: timeliness is judged on it
    version             bigint NOT NULL CHECK (version > 0),
    status              text NOT NULL CHECK (status IN ('submitted', 'approved', 'returned', 'reopened')),
    decided_by          text,
    decided_at          timestamptz,
    reason              text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    via                 text NOT NULL DEFAULT 'local',   -- 'local', 'parent' or the child it came from
    PRIMARY KEY (unit_code, data_set, period),
    CHECK (first_submitted_at <= submitted_at)
);

ALTER TABLE lt.outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE lt.outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN (1, 2, 3));   -- 3: submission

-- The outbox feed of submissions, beside (not inside) the data triggers of 0002.
CREATE FUNCTION lt.submission_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT has_parent FROM lt.node) AND current_setting('lt.applying_meta', true) IS DISTINCT FROM 'on' THEN
        PERFORM lt.writer_lock();
        INSERT INTO lt.outbox (kind, row_id) SELECT 3, id FROM new_rows ORDER BY id;
        PERFORM pg_notify('lt_outbox', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER submission_ins AFTER INSERT ON lt.submission
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.submission_changed();
CREATE TRIGGER submission_upd AFTER UPDATE ON lt.submission
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION lt.submission_changed();
CREATE TRIGGER submission_del BEFORE DELETE ON lt.submission
    FOR EACH ROW EXECUTE FUNCTION lt.refuse_delete();

-- The instant a data set is due for a period (submissions strictly before it are on
-- time); NULL when the catalogue has no deadline for that period type.
CREATE FUNCTION lt.due_at(p_data_set text, p_period text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE d.rule
        WHEN 'fixed' THEN lt.vn_midnight(make_date(extract(year FROM lt.period_end(p_period))::int, d.due_month, 1)
                                         + (d.due_day - 1))
        WHEN 'after_end' THEN lt.vn_midnight(lt.period_end(p_period) + d.days_after + 1)
    END
      FROM lt.deadline d
     WHERE d.data_set = p_data_set AND d.period_type = lt.period_type(p_period)
$$;

-- The level of a unit on a date.
CREATE FUNCTION lt.unit_level(p_unit text, p_on date) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT level FROM lt.unit WHERE code = p_unit AND p_on >= valid_from AND p_on < valid_to LIMIT 1
$$;

-- This node's unit declares a data set complete for a period. Returns the version.
CREATE FUNCTION lt.submit(p_data_set text, p_period text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    me text := (SELECT unit_code FROM lt.node);
    ds lt.data_set%ROWTYPE;
    prev lt.submission%ROWTYPE;
    lvl text;
    v bigint;
    ts timestamptz := date_trunc('milliseconds', clock_timestamp());
BEGIN
    PERFORM lt.writer_lock();
    SELECT * INTO ds FROM lt.data_set WHERE code = p_data_set;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown data set "%"', p_data_set USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lt.period_type(p_period) IS DISTINCT FROM ds.period_type THEN
        RAISE EXCEPTION 'data set % is reported per %, and "%" is not a % period', p_data_set, ds.period_type,
            p_period, ds.period_type USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM lt.check_own_unit(me, lt.period_end(p_period));
    lvl := lt.unit_level(me, lt.period_end(p_period));
    IF NOT lvl = ANY (ds.levels) THEN
        RAISE EXCEPTION 'data set % is reported by % units, and % is a %', p_data_set,
            array_to_string(ds.levels, ', '), me, lvl USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lt.period_start(p_period) > lt.vn_date(ts) THEN
        RAISE EXCEPTION 'period % has not begun', p_period USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO prev FROM lt.submission WHERE (unit_code, data_set, period) = (me, p_data_set, p_period) FOR UPDATE;
    IF FOUND AND prev.status = 'approved' THEN
        RAISE EXCEPTION '% for % was approved by % on %: it is locked until it is reopened',
            p_data_set, p_period, prev.decided_by, to_char(lt.vn_date(prev.decided_at), 'DD/MM/YYYY')
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    v := lt.next_version(prev.version);
    INSERT INTO lt.submission AS s (unit_code, data_set, period, submitted_at, first_submitted_at, version, status)
    VALUES (me, p_data_set, p_period, ts, ts, v, 'submitted')
    ON CONFLICT (unit_code, data_set, period) DO UPDATE
       SET submitted_at = EXCLUDED.submitted_at, version = EXCLUDED.version, status = 'submitted',
           received_at = now(), via = 'local';
    RETURN v;
END $$;

-- The document an approval change carries (the decided submission, without local columns).
CREATE FUNCTION lt.submission_doc(s lt.submission) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_jsonb(s) - 'id' - 'received_at' - 'via'
$$;

-- An ancestor decides on a unit's submission: 'approved' (locks the period),
-- 'returned' (with a reason: the unit corrects and submits again) or 'reopened'
-- (unlocks an approved period, with a reason). Returns the new version.
CREATE FUNCTION lt.decide(p_unit text, p_data_set text, p_period text, p_decision text, p_reason text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    me text := (SELECT unit_code FROM lt.node);
    prev lt.submission%ROWTYPE;
    cur lt.submission%ROWTYPE;
BEGIN
    IF p_decision NOT IN ('approved', 'returned', 'reopened') THEN
        RAISE EXCEPTION 'a decision is approved, returned or reopened, not "%"', p_decision
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_decision <> 'approved' AND coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'a % decision needs a reason', p_decision USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_unit = me OR NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                                   WHERE p.descendant = p_unit AND p.ancestor = me
                                     AND lt.period_end(p_period) >= p.valid_from AND lt.period_end(p_period) < p.valid_to) THEN
        RAISE EXCEPTION 'unit % is not below % for period %: only an ancestor decides on a submission', p_unit, me, p_period
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM lt.meta_lock();
    PERFORM lt.writer_lock();
    SELECT * INTO prev FROM lt.submission WHERE (unit_code, data_set, period) = (p_unit, p_data_set, p_period) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unit % has not submitted % for %', p_unit, p_data_set, p_period
            USING ERRCODE = 'no_data_found';
    END IF;
    IF (p_decision IN ('approved', 'returned') AND prev.status <> 'submitted')
       OR (p_decision = 'reopened' AND prev.status <> 'approved') THEN
        RAISE EXCEPTION 'the submission of % for % by % is %: it cannot be %', p_data_set, p_period, p_unit,
            prev.status, p_decision USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE lt.submission
       SET status = p_decision, decided_by = me, decided_at = date_trunc('milliseconds', clock_timestamp()),
           reason = nullif(btrim(p_reason), ''), version = lt.next_version(prev.version), received_at = now(),
           via = 'local'
     WHERE (unit_code, data_set, period) = (p_unit, p_data_set, p_period)
    RETURNING * INTO cur;
    PERFORM lt.meta_log('approval', concat_ws('/', p_unit, p_data_set, p_period), lt.submission_doc(cur), p_unit);
    RETURN cur.version;
END $$;

-- A decision arriving from above (lt.meta_apply, kind 'approval'): the newer version wins.
CREATE FUNCTION lt.approval_apply(p_key text, p_doc jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s lt.submission%ROWTYPE;
BEGIN
    IF p_doc IS NULL THEN
        RETURN;   -- decisions are never deleted
    END IF;
    s := jsonb_populate_record(NULL::lt.submission, p_doc);
    IF concat_ws('/', s.unit_code, s.data_set, s.period) IS DISTINCT FROM p_key THEN
        RAISE EXCEPTION 'approval "%": the document is about "%"', p_key, concat_ws('/', s.unit_code, s.data_set, s.period)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO lt.submission AS t (unit_code, data_set, period, submitted_at, first_submitted_at, version, status,
                                    decided_by, decided_at, reason, via)
    VALUES (s.unit_code, s.data_set, s.period, s.submitted_at, s.first_submitted_at, s.version, s.status,
            s.decided_by, s.decided_at, s.reason, 'parent')
    ON CONFLICT (unit_code, data_set, period) DO UPDATE
       SET submitted_at = EXCLUDED.submitted_at, first_submitted_at = EXCLUDED.first_submitted_at,
           version = EXCLUDED.version, status = EXCLUDED.status, decided_by = EXCLUDED.decided_by,
           decided_at = EXCLUDED.decided_at, reason = EXCLUDED.reason, received_at = now(), via = 'parent'
     WHERE t.version < EXCLUDED.version;
END $$;

-- Parent side of the up-flow of submissions: p_rows is an array of submission rows
-- (the columns of lt.submission; "seq" optional, kept with a refusal). Rows outside
-- p_child's subtree (on the period's last day) or otherwise invalid are refused and
-- kept in lt.rejected_delta; the others are upserted when their version is newer.
-- Result: ('summary', rows applied, NULL), then ('reject', wire code, reason) per refusal.
CREATE FUNCTION lt.submission_apply(p_child text, p_rows jsonb)
RETURNS TABLE (kind text, n int, reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
    why text;
    code int;
    applied int := 0;
    k int;
BEGIN
    PERFORM lt.writer_lock();
    FOR r IN SELECT x.*, (x.seq) AS seq_no
               FROM jsonb_to_recordset(p_rows) AS x(seq bigint, unit_code text, data_set text, period text,
                    submitted_at timestamptz, first_submitted_at timestamptz, version bigint, status text,
                    decided_by text, decided_at timestamptz, reason text)
              ORDER BY x.version LOOP
        why := CASE
            WHEN lt.period_end(r.period) IS NULL THEN format('period "%s" is not a period', r.period)
            WHEN NOT EXISTS (SELECT 1 FROM lt.rollup_path p
                              WHERE p.descendant = r.unit_code AND p.ancestor = p_child
                                AND lt.period_end(r.period) >= p.valid_from AND lt.period_end(r.period) < p.valid_to)
                THEN format('unit %s is not inside the subtree of %s (as of %s) at this node',
                            r.unit_code, p_child, lt.period_end(r.period))
            WHEN r.status IS NULL OR r.status NOT IN ('submitted', 'approved', 'returned', 'reopened')
                THEN format('submission status "%s" is unknown', r.status)
            WHEN r.version IS NULL OR r.version <= 0 OR r.submitted_at IS NULL OR r.first_submitted_at IS NULL
                 OR r.first_submitted_at > r.submitted_at OR r.data_set IS NULL
                THEN 'submission lacks data_set, version or submission times'
        END;
        code := CASE WHEN why LIKE 'unit % is not inside%' THEN 7 ELSE 6 END;
        IF why IS NOT NULL THEN
            INSERT INTO lt.rejected_delta (child_unit, seq, code, reason, record)
            VALUES (p_child, coalesce(r.seq_no, 0), code, why, to_jsonb(r) - 'seq_no');
            RETURN QUERY SELECT 'reject'::text, code, why;
            CONTINUE;
        END IF;
        INSERT INTO lt.submission AS t (unit_code, data_set, period, submitted_at, first_submitted_at, version, status,
                                        decided_by, decided_at, reason, via)
        VALUES (r.unit_code, r.data_set, r.period, r.submitted_at, r.first_submitted_at, r.version, r.status,
                r.decided_by, r.decided_at, r.reason, p_child)
        ON CONFLICT (unit_code, data_set, period) DO UPDATE
           SET submitted_at = EXCLUDED.submitted_at, first_submitted_at = EXCLUDED.first_submitted_at,
               version = EXCLUDED.version, status = EXCLUDED.status, decided_by = EXCLUDED.decided_by,
               decided_at = EXCLUDED.decided_at, reason = EXCLUDED.reason, received_at = now(), via = EXCLUDED.via
         WHERE t.version < EXCLUDED.version;
        GET DIAGNOSTICS k = ROW_COUNT;
        applied := applied + k;
    END LOOP;
    RETURN QUERY SELECT 'summary'::text, applied, NULL::text;
END $$;

-- ---------------------------------------------------------------- locks
-- The approved submission (if any) that locks a value of p_unit.
CREATE FUNCTION lt.value_lock(p_unit text, p_element text, p_period text) RETURNS lt.submission
LANGUAGE sql STABLE AS $$
    SELECT s.*
      FROM lt.submission s
      JOIN lt.data_set ds ON ds.code = s.data_set
     WHERE s.unit_code = p_unit AND s.status = 'approved'
       AND (ds.elements IS NULL OR p_element = ANY (ds.elements))
       AND lt.period_start(p_period) >= lt.period_start(s.period) AND lt.period_end(p_period) <= lt.period_end(s.period)
     ORDER BY s.period
     LIMIT 1
$$;

CREATE FUNCTION lt.refuse_locked_value() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s lt.submission;
BEGIN
    s := lt.value_lock(NEW.unit_code, NEW.element, NEW.period);
    IF s.unit_code IS NOT NULL THEN
        RAISE EXCEPTION '% % of unit % is locked: % for % was approved by % on %; it must be reopened before it is edited',
            NEW.element, NEW.period, NEW.unit_code, s.data_set, s.period, s.decided_by,
            to_char(lt.vn_date(s.decided_at), 'DD/MM/YYYY')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('the approving unit runs: lienthong decide %s %s %s reopened "reason"',
                                NEW.unit_code, s.data_set, s.period);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER data_value_lock BEFORE INSERT OR UPDATE ON lt.data_value
    FOR EACH ROW WHEN (NEW.via = 'local') EXECUTE FUNCTION lt.refuse_locked_value();

-- Cases: a new case notified inside an approved period is refused; for an existing one,
-- what the approved report counted is frozen: who the child is, its categories, whether
-- it exists, and every step dated up to the period's end. Later steps, the status and
-- the services may still be recorded.
CREATE FUNCTION lt.refuse_locked_case() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s record;
    e date;
    what text;
BEGIN
    IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM lt.case_record WHERE case_id = NEW.case_id) THEN
        RETURN NEW;   -- an upsert of an existing case: the UPDATE decides
    END IF;
    FOR s IN SELECT sub.*
               FROM lt.submission sub
               JOIN lt.data_set ds ON ds.code = sub.data_set AND ds.includes_cases
              WHERE sub.unit_code = NEW.unit_code AND sub.status = 'approved'
                AND (lt.vn_date(NEW.notified_at) BETWEEN lt.period_start(sub.period) AND lt.period_end(sub.period)
                     OR (TG_OP = 'UPDATE' AND lt.vn_date(OLD.notified_at) BETWEEN lt.period_start(sub.period)
                                                                            AND lt.period_end(sub.period))) LOOP
        e := lt.period_end(s.period);
        IF TG_OP = 'INSERT' THEN
            what := 'a new case notified on ' || to_char(lt.vn_date(NEW.notified_at), 'DD/MM/YYYY');
        ELSE
            what := CASE
                WHEN NEW.notified_at IS DISTINCT FROM OLD.notified_at THEN 'the notification date'
                WHEN NEW.deleted IS DISTINCT FROM OLD.deleted THEN 'deleting the case'
                WHEN NEW.categories IS DISTINCT FROM OLD.categories THEN 'the categories'
                WHEN (NEW.sex, NEW.birth_ym, NEW.ethnicity, NEW.village_code)
                     IS DISTINCT FROM (OLD.sex, OLD.birth_ym, OLD.ethnicity, OLD.village_code) THEN 'the child''s details'
                WHEN NEW.assessed_at IS DISTINCT FROM OLD.assessed_at
                     AND least(lt.vn_date(NEW.assessed_at), lt.vn_date(OLD.assessed_at)) <= e THEN 'the assessment date'
                WHEN NEW.emergency_at IS DISTINCT FROM OLD.emergency_at
                     AND least(lt.vn_date(NEW.emergency_at), lt.vn_date(OLD.emergency_at)) <= e THEN 'the emergency date'
                WHEN NEW.plan_drafted_at IS DISTINCT FROM OLD.plan_drafted_at
                     AND least(lt.vn_date(NEW.plan_drafted_at), lt.vn_date(OLD.plan_drafted_at)) <= e THEN 'the plan date'
                WHEN NEW.plan_approved_at IS DISTINCT FROM OLD.plan_approved_at
                     AND least(lt.vn_date(NEW.plan_approved_at), lt.vn_date(OLD.plan_approved_at)) <= e THEN 'the plan approval date'
                WHEN NEW.reviewed_at IS DISTINCT FROM OLD.reviewed_at
                     AND least(lt.vn_date(NEW.reviewed_at), lt.vn_date(OLD.reviewed_at)) <= e THEN 'the review date'
                WHEN NEW.closed_at IS DISTINCT FROM OLD.closed_at
                     AND least(lt.vn_date(NEW.closed_at), lt.vn_date(OLD.closed_at)) <= e THEN 'the closing date'
            END;
        END IF;
        IF what IS NOT NULL THEN
            RAISE EXCEPTION 'case % of unit %: % falls in % for %, approved by % on %; it must be reopened before it is edited',
                NEW.case_id, NEW.unit_code, what, s.data_set, s.period, s.decided_by,
                to_char(lt.vn_date(s.decided_at), 'DD/MM/YYYY')
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END LOOP;
    RETURN NEW;
END $$;

CREATE TRIGGER case_record_lock BEFORE INSERT OR UPDATE ON lt.case_record
    FOR EACH ROW WHEN (NEW.via = 'local') EXECUTE FUNCTION lt.refuse_locked_case();

-- ---------------------------------------------------------------- case timeliness
CREATE FUNCTION lt.case_step_at(c lt.case_record, p_step text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_step
        WHEN 'notified' THEN c.notified_at WHEN 'assessed' THEN c.assessed_at
        WHEN 'emergency' THEN c.emergency_at WHEN 'plan_drafted' THEN c.plan_drafted_at
        WHEN 'plan_approved' THEN c.plan_approved_at WHEN 'reviewed' THEN c.reviewed_at
        WHEN 'closed' THEN c.closed_at
    END
$$;

-- Time from a to b in a deadline's unit: hours, calendar days or working days
-- (Vietnamese calendar days; working days skip weekends and the holidays table).
CREATE FUNCTION lt.elapsed(a timestamptz, b timestamptz, p_unit text) RETURNS numeric
LANGUAGE plpgsql STABLE STRICT AS $$
BEGIN
    RETURN CASE p_unit
        WHEN 'hours' THEN round((extract(epoch FROM b - a) / 3600)::numeric, 2)
        WHEN 'days' THEN (lt.vn_date(b) - lt.vn_date(a))::numeric
        WHEN 'working_days' THEN lt.working_days_between(lt.vn_date(a), lt.vn_date(b))::numeric
    END;
END $$;

-- A case's timeliness as of a moment, against every deadline of lt.case_deadline:
-- 'late' if a step happened after its deadline, or is still missing after it (or was
-- missing when the case was closed); else 'pending' if a required step is not done and
-- its deadline has not passed; else 'on_time' (supported in time). A deadline whose
-- starting step has not happened does not run; an optional step (required = false) is
-- judged only when it was recorded.
CREATE FUNCTION lt.case_timeliness(c lt.case_record, p_as_of timestamptz) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r lt.case_deadline%ROWTYPE;
    f timestamptz;
    t timestamptz;
    late boolean := false;
    pending boolean := false;
BEGIN
    FOR r IN SELECT * FROM lt.case_deadline LOOP
        f := lt.case_step_at(c, r.from_step);
        t := lt.case_step_at(c, r.step);
        CONTINUE WHEN f IS NULL;
        IF t IS NOT NULL THEN
            late := late OR lt.elapsed(f, t, r.unit) > r.amount;
        ELSIF r.required THEN
            IF lt.elapsed(f, coalesce(c.closed_at, p_as_of), r.unit) > r.amount THEN
                late := true;
            ELSIF c.closed_at IS NULL THEN
                pending := true;
            END IF;
        END IF;
    END LOOP;
    RETURN CASE WHEN late THEN 'late' WHEN pending THEN 'pending' ELSE 'on_time' END;
END $$;

-- The elapsed time of one step against its rule (NULL without a rule or the dates).
CREATE FUNCTION lt.case_step_elapsed(c lt.case_record, p_step text) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r lt.case_deadline%ROWTYPE;
BEGIN
    SELECT * INTO r FROM lt.case_deadline WHERE step = p_step;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN lt.elapsed(lt.case_step_at(c, r.from_step), lt.case_step_at(c, r.step), r.unit);
END $$;

-- ---------------------------------------------------------------- read interface
-- Everything an officer or a BI tool reads is a view in lt_report (schemas/VIEWS.md).
-- Filter by unit_code and period: the filters reach the roll-up indexes.
CREATE SCHEMA lt_report;

-- The terms of every indicator, with the category and service masks they select.
CREATE VIEW lt_report.indicator_term AS
SELECT i.code AS indicator, s.side, t.pos, t.kind, t.element, t.cats AS categories, t.services,
       CASE WHEN t.cats IS NOT NULL
            THEN (SELECT coalesce(sum(1 << c.bit), 0)::int FROM lt.case_category c WHERE c.code = ANY (t.cats)) END
           AS category_mask,
       CASE WHEN t.services IS NOT NULL
            THEN (SELECT coalesce(sum(1 << v.bit), 0)::int FROM lt.service v WHERE v.code = ANY (t.services)) END
           AS service_mask
  FROM lt.indicator i
 CROSS JOIN LATERAL (VALUES ('numerator', i.numerator), ('denominator', i.denominator)) s(side, expr)
 CROSS JOIN LATERAL lt.parse_terms(s.expr) t;

-- A data element's value for a unit (its whole subtree) and a reporting period, from
-- the roll-ups: 'sum' elements add the periods of their type inside the period, 'max'
-- and 'min' take the extreme, 'last' elements (populations) take the latest period of
-- their type that overlaps it. disagg '' is the total (undisaggregated rows plus the
-- options of the element's dimension); other rows are one option each.
CREATE VIEW lt_report.element_value AS
SELECT v.unit_code, p.code AS period, p.period_type, v.element, v.disagg, e.aggregation,
       CASE e.aggregation
           WHEN 'sum' THEN sum(v.total)
           WHEN 'max' THEN max(v.total)
           WHEN 'min' THEN min(v.total)
           ELSE (array_agg(v.total ORDER BY v.sp_end DESC, v.sp_start DESC))[1]
       END AS value,
       count(*) AS periods_used,
       max(v.updated_at) AS freshness
  FROM (SELECT r.unit_code, r.element, r.period, ''::text AS disagg, sum(r.total) AS total,
               max(r.updated_at) AS updated_at, lt.period_start(r.period) AS sp_start, lt.period_end(r.period) AS sp_end
          FROM lt.rollup_value r
          JOIN lt.data_element e ON e.code = r.element
         WHERE r.n_rows > 0
           AND (r.disagg = '' OR split_part(r.disagg, '=', 1) = e.disaggregation)
           AND (e.period_type IS NULL OR lt.period_type(r.period) = e.period_type)
         GROUP BY r.unit_code, r.element, r.period
        UNION ALL
        SELECT r.unit_code, r.element, r.period, r.disagg, r.total, r.updated_at,
               lt.period_start(r.period), lt.period_end(r.period)
          FROM lt.rollup_value r
          JOIN lt.data_element e ON e.code = r.element
         WHERE r.n_rows > 0
           AND split_part(r.disagg, '=', 1) = e.disaggregation
           AND (e.period_type IS NULL OR lt.period_type(r.period) = e.period_type)) v
  JOIN lt.data_element e ON e.code = v.element
  JOIN lt.period p ON CASE WHEN e.aggregation = 'last'
                           THEN v.sp_start <= p.end_date AND v.sp_end >= p.start_date
                           ELSE v.sp_start >= p.start_date AND v.sp_end <= p.end_date END
 GROUP BY v.unit_code, p.code, p.period_type, v.element, v.disagg, e.aggregation;

-- Every live case with its timeliness (no personal data: lt.case_personal is not read).
CREATE VIEW lt_report.case_timeliness AS
SELECT c.case_id, c.unit_code, c.period AS month, lt.vn_date(c.notified_at) AS notified_on,
       lt.vn_date(c.closed_at) AS closed_on, c.status,
       ARRAY(SELECT g.code FROM lt.case_category g WHERE c.categories & (1 << g.bit) <> 0 ORDER BY g.bit) AS categories,
       ARRAY(SELECT s.code FROM lt.service s WHERE c.services & (1 << s.bit) <> 0 ORDER BY s.bit) AS services,
       lt.case_step_elapsed(c, 'emergency') AS emergency_elapsed,
       lt.case_step_elapsed(c, 'plan_drafted') AS plan_drafted_elapsed,
       lt.case_step_elapsed(c, 'plan_approved') AS plan_approved_elapsed,
       lt.case_timeliness(c, now()) AS timeliness,
       c.received_at AS freshness
  FROM lt.case_record c
 WHERE NOT c.deleted;

-- Per unit of this node's subtree and period: cases notified, and how many were
-- handled on time, late, or are still within their deadlines.
CREATE VIEW lt_report.case_timeliness_summary AS
SELECT x.unit_code, x.period, x.period_type,
       count(*) AS cases,
       count(*) FILTER (WHERE x.timeliness = 'on_time') AS on_time,
       count(*) FILTER (WHERE x.timeliness = 'late') AS late,
       count(*) FILTER (WHERE x.timeliness = 'pending') AS pending,
       round(100.0 * count(*) FILTER (WHERE x.timeliness = 'on_time')
             / nullif(count(*) FILTER (WHERE x.timeliness IN ('on_time', 'late')), 0), 2) AS on_time_percent,
       max(x.received_at) AS freshness
  FROM (SELECT p.ancestor AS unit_code, pr.code AS period, pr.period_type, c.received_at,
               lt.case_timeliness(c, now()) AS timeliness
          FROM lt.case_record c
          JOIN lt.rollup_path p ON p.descendant = c.unit_code AND c.ref_date >= p.valid_from AND c.ref_date < p.valid_to
          JOIN lt.period pr ON lt.vn_date(c.notified_at) BETWEEN pr.start_date AND pr.end_date
         WHERE NOT c.deleted) x
 GROUP BY x.unit_code, x.period, x.period_type;

-- Indicators per unit of this node's subtree and period, against the most specific
-- target: a unit's own target before its level's before every level's ('*'), the
-- target of exactly this period before that of a longer period containing this year
-- (targets apply to their own period and to the years inside it).
CREATE VIEW lt_report.indicator_value AS
SELECT g.unit_code, u.name AS unit_name, u.level AS unit_level, g.period, pr.period_type,
       i.code AS indicator, i.sort_order, i.ind_type, i.name_vi, i.name_en,
       n.numerator, n.denominator, n.value,
       tg.plan, tg.comparison, tg.value AS target,
       CASE WHEN n.value IS NULL OR tg.value IS NULL THEN NULL
            WHEN tg.comparison = '<' THEN n.value < tg.value
            WHEN tg.comparison = '<=' THEN n.value <= tg.value
            WHEN tg.comparison = '>=' THEN n.value >= tg.value
            WHEN tg.comparison = '>' THEN n.value > tg.value
       END AS met,
       greatest((g.vals -> (i.code || '/numerator') ->> 1)::timestamptz,
                (g.vals -> (i.code || '/denominator') ->> 1)::timestamptz) AS freshness
  FROM (
    -- every term of every indicator, summed per (unit, period, indicator, side), then one
    -- row per (unit, period) with them in a JSON object keyed "INDICATOR/side"
    SELECT t.unit_code, t.period, jsonb_object_agg(t.indicator || '/' || t.side, jsonb_build_array(t.v, t.fresh)) AS vals
      FROM (
        SELECT x.unit_code, x.period, x.indicator, x.side, sum(x.v) AS v, max(x.fresh) AS fresh
          FROM (
            SELECT ev.unit_code, ev.period, it.indicator, it.side, ev.value AS v, ev.freshness AS fresh
              FROM lt_report.indicator_term it
              JOIN lt_report.element_value ev ON ev.element = it.element AND ev.disagg = ''
             WHERE it.kind = 'de'
            UNION ALL
            (-- the case terms, their masks computed once (not once per case)
             WITH it AS MATERIALIZED (SELECT * FROM lt_report.indicator_term WHERE kind <> 'de')
            SELECT p.ancestor, pr.code, it.indicator, it.side, count(*)::numeric, max(c.received_at)
              FROM it
              JOIN lt.case_record c ON NOT c.deleted
                                   AND (it.category_mask IS NULL OR c.categories & it.category_mask <> 0)
              JOIN lt.rollup_path p ON p.descendant = c.unit_code AND c.ref_date >= p.valid_from
                                   AND c.ref_date < p.valid_to
              JOIN lt.period pr ON pr.start_date <= current_date
                               AND pr.end_date >= lt.vn_date(c.notified_at)
                               AND pr.start_date <= coalesce(lt.vn_date(c.closed_at), current_date)
             WHERE (it.kind NOT IN ('cases', 'timely', 'due') OR lt.vn_date(c.notified_at) >= pr.start_date)
               AND (it.kind <> 'served' OR CASE WHEN it.service_mask IS NULL THEN c.services <> 0
                                                ELSE c.services & it.service_mask <> 0 END)
               AND (it.kind NOT IN ('timely', 'due')
                    OR lt.case_timeliness(c, now()) IN ('on_time', CASE WHEN it.kind = 'due' THEN 'late' END))
             GROUP BY 1, 2, 3, 4)) x
         GROUP BY 1, 2, 3, 4) t
     GROUP BY t.unit_code, t.period) g
  JOIN lt.period pr ON pr.code = g.period
 CROSS JOIN lt.indicator i
  JOIN (SELECT it.indicator,
               bool_and(it.kind <> 'de') FILTER (WHERE it.side = 'numerator') AS num_cases_only,
               bool_and(it.kind <> 'de') FILTER (WHERE it.side = 'denominator') AS den_cases_only
          FROM lt_report.indicator_term it GROUP BY it.indicator) ic ON ic.indicator = i.code
  LEFT JOIN lt.unit u ON u.code = g.unit_code AND pr.end_date >= u.valid_from AND pr.end_date < u.valid_to
 CROSS JOIN LATERAL (
    SELECT x.numerator, x.denominator,
           CASE i.ind_type
               WHEN 'count' THEN x.numerator
               WHEN 'percent' THEN CASE WHEN x.denominator > 0 THEN round(100 * x.numerator / x.denominator, 4) END
               WHEN 'per_1000' THEN CASE WHEN x.denominator > 0 THEN round(1000 * x.numerator / x.denominator, 4) END
           END AS value
      FROM (SELECT CASE WHEN ic.num_cases_only THEN coalesce((g.vals -> (i.code || '/numerator') ->> 0)::numeric, 0)
                        ELSE (g.vals -> (i.code || '/numerator') ->> 0)::numeric END AS numerator,
                   CASE WHEN ic.den_cases_only THEN coalesce((g.vals -> (i.code || '/denominator') ->> 0)::numeric, 0)
                        ELSE (g.vals -> (i.code || '/denominator') ->> 0)::numeric END AS denominator) x
 ) n
  LEFT JOIN LATERAL (
    SELECT t.plan, t.comparison, t.value
      FROM lt.target t
     WHERE t.indicator = i.code
       AND (t.scope = g.unit_code OR t.scope = u.level OR t.scope = '*')
       AND (t.period = g.period
            OR (pr.period_type = 'year' AND lt.period_start(t.period) <= pr.start_date
                AND lt.period_end(t.period) >= pr.end_date))
     ORDER BY (t.scope = g.unit_code) DESC, (t.scope = '*'), (t.period = g.period) DESC,
              lt.period_end(t.period) - lt.period_start(t.period), t.plan
     LIMIT 1) tg ON true;

-- Reporting completeness: one row per (scope unit, expected unit, data set, period) for
-- every unit strictly below the scope unit, inside this node's subtree, that existed on
-- the period's last day at a level that reports the data set; periods that have begun.
CREATE VIEW lt_report.submission_status AS
SELECT a.ancestor AS scope_unit, a.descendant AS unit_code, u.name AS unit_name, u.level AS unit_level,
       ds.code AS data_set, pr.code AS period, x.due_at,
       s.status, s.first_submitted_at, s.submitted_at,
       CASE WHEN s.status IS NULL OR s.status = 'returned' THEN 'missing'
            WHEN x.due_at IS NULL OR s.first_submitted_at < x.due_at THEN 'on_time'
            ELSE 'late' END AS state,
       (s.status IS NULL AND x.due_at IS NOT NULL AND now() >= x.due_at) AS overdue,
       CASE WHEN s.first_submitted_at >= x.due_at
            THEN lt.vn_date(s.first_submitted_at) - lt.vn_date(x.due_at) + 1 END AS days_late,
       s.decided_by, s.decided_at, s.reason, s.received_at AS freshness
  FROM lt.data_set ds
  JOIN lt.period pr ON pr.period_type = ds.period_type AND pr.start_date <= current_date
                   AND pr.end_date >= ds.active_from AND (ds.active_to IS NULL OR pr.start_date < ds.active_to)
  JOIN lt.rollup_path a ON a.descendant <> a.ancestor AND pr.end_date >= a.valid_from AND pr.end_date < a.valid_to
  JOIN lt.unit u ON u.code = a.descendant AND pr.end_date >= u.valid_from AND pr.end_date < u.valid_to
                AND u.level = ANY (ds.levels)
 CROSS JOIN LATERAL (SELECT lt.due_at(ds.code, pr.code) AS due_at) x
  LEFT JOIN lt.submission s ON s.unit_code = a.descendant AND s.data_set = ds.code AND s.period = pr.code;

CREATE VIEW lt_report.completeness AS
SELECT scope_unit, data_set, period, min(due_at) AS due_at,
       count(*) AS expected,
       count(*) FILTER (WHERE state <> 'missing') AS submitted,
       count(*) FILTER (WHERE state = 'on_time') AS on_time,
       count(*) FILTER (WHERE state = 'late') AS late,
       count(*) FILTER (WHERE state = 'missing') AS missing,
       count(*) FILTER (WHERE overdue) AS overdue,
       count(*) FILTER (WHERE status = 'approved') AS approved,
       count(*) FILTER (WHERE status = 'returned') AS returned,
       round(100.0 * count(*) FILTER (WHERE state <> 'missing') / count(*), 2) AS submitted_percent,
       round(100.0 * count(*) FILTER (WHERE state = 'on_time') / count(*), 2) AS on_time_percent,
       max(freshness) AS freshness
  FROM lt_report.submission_status
 GROUP BY scope_unit, data_set, period;

-- The targets, readable.
CREATE VIEW lt_report.target AS
SELECT t.plan, p.name_vi AS plan_name_vi, p.name_en AS plan_name_en, t.indicator,
       i.name_vi AS indicator_name_vi, i.name_en AS indicator_name_en, i.ind_type,
       t.scope, t.period, t.comparison, t.value, t.note
  FROM lt.target t
  LEFT JOIN lt.plan p ON p.code = t.plan
  LEFT JOIN lt.indicator i ON i.code = t.indicator;

-- Where this node's catalogue stands.
CREATE VIEW lt_report.meta_status AS
SELECT s.applied_version, s.applied_at, s.changes_applied,
       (SELECT count(*) FROM lt.meta_change) AS log_rows,
       (SELECT CASE WHEN q.is_called THEN q.last_value ELSE 0 END FROM lt.meta_change_seq q) AS log_high,
       (SELECT max(changed_at) FROM lt.meta_change) AS last_change
  FROM lt.meta_state s;

-- ---------------------------------------------------------------- privileges
-- What officers and the daemon call runs as the schema owner (0005's model): officers
-- submit and decide; the daemon carries metadata down and submissions up.
ALTER FUNCTION lt.submit(text, text) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.decide(text, text, text, text, text) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.meta_changes_since(bigint, text, int) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.meta_apply(jsonb) SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.meta_version() SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.meta_high() SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.meta_reset() SECURITY DEFINER SET search_path = lt, pg_temp;
ALTER FUNCTION lt.submission_apply(text, jsonb) SECURITY DEFINER SET search_path = lt, pg_temp;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lienthong_reader') THEN
        CREATE ROLE lienthong_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;   -- another database of the cluster created it at the same moment
END $$;

-- 0005's model: the writing definer functions each role may call are registered in
-- lt.function_grant, and lt.apply_privileges() grants exactly those (and re-grants the
-- new tables to readers and officers).
DO $$
BEGIN
    IF to_regclass('lt.function_grant') IS NOT NULL THEN
        INSERT INTO lt.function_grant (role, signature) VALUES
            ('lienthong_officer', 'lt.submit(text, text)'),
            ('lienthong_officer', 'lt.decide(text, text, text, text, text)'),
            ('lienthong_daemon', 'lt.meta_changes_since(bigint, text, integer)'),
            ('lienthong_daemon', 'lt.meta_apply(jsonb)'),
            ('lienthong_daemon', 'lt.meta_version()'),
            ('lienthong_daemon', 'lt.meta_high()'),
            ('lienthong_daemon', 'lt.meta_reset()'),
            ('lienthong_daemon', 'lt.submission_apply(text, jsonb)')
        ON CONFLICT DO NOTHING;
    END IF;
    IF to_regprocedure('lt.apply_privileges()') IS NOT NULL THEN
        PERFORM lt.apply_privileges();
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lienthong_officer') THEN
        GRANT USAGE ON SCHEMA lt_report TO lienthong_officer;
        GRANT SELECT ON ALL TABLES IN SCHEMA lt_report TO lienthong_officer;
    END IF;
END $$;

GRANT USAGE ON SCHEMA lt_report TO lienthong_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA lt_report TO lienthong_reader;
-- the functions the views call (kept callable even where PUBLIC's EXECUTE is revoked)
GRANT EXECUTE ON FUNCTION lt.period_end(text), lt.period_start(text), lt.period_type(text), lt.month_of(timestamptz),
    lt.vn_date(timestamptz), lt.vn_midnight(date), lt.weekday_index(date), lt.working_days_between(date, date),
    lt.parse_terms(text), lt.due_at(text, text), lt.case_timeliness(lt.case_record, timestamptz),
    lt.case_step_elapsed(lt.case_record, text), lt.elapsed(timestamptz, timestamptz, text),
    lt.case_step_at(lt.case_record, text) TO lienthong_reader;
