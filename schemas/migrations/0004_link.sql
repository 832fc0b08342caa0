-- 0004_link.sql — what the daemon asks of its database on each link, kept here so
-- the SQL of the protocol lives next to the tables it reads.

-- Child side: the next records to send, oldest first. Personal data is not joined:
-- lt.case_personal has no path into this result.
CREATE FUNCTION lt.outbox_read(p_after bigint, p_limit int)
RETURNS TABLE (
    seq bigint, kind smallint,
    unit_code text, element text, period text, disagg text, value text, version bigint, changed_ms bigint,
    case_id uuid, deleted boolean, sex text, birth_ym text, ethnicity smallint, village_code text,
    categories int, status text, notified_ms bigint, assessed_ms bigint, emergency_ms bigint,
    plan_drafted_ms bigint, plan_approved_ms bigint, reviewed_ms bigint, closed_ms bigint, services int)
LANGUAGE sql STABLE AS $$
    SELECT o.seq, o.kind,
           coalesce(d.unit_code, c.unit_code), d.element, d.period, d.disagg, d.value::text,
           coalesce(d.version, c.version),
           (extract(epoch FROM coalesce(d.changed_at, c.changed_at)) * 1000)::bigint,
           c.case_id, c.deleted, c.sex, c.birth_ym, c.ethnicity, c.village_code, c.categories, c.status,
           (extract(epoch FROM c.notified_at) * 1000)::bigint,
           (extract(epoch FROM c.assessed_at) * 1000)::bigint,
           (extract(epoch FROM c.emergency_at) * 1000)::bigint,
           (extract(epoch FROM c.plan_drafted_at) * 1000)::bigint,
           (extract(epoch FROM c.plan_approved_at) * 1000)::bigint,
           (extract(epoch FROM c.reviewed_at) * 1000)::bigint,
           (extract(epoch FROM c.closed_at) * 1000)::bigint,
           c.services
      FROM lt.outbox o
      LEFT JOIN lt.data_value d ON o.kind = 1 AND d.id = o.row_id
      LEFT JOIN lt.case_record c ON o.kind = 2 AND c.id = o.row_id
     WHERE o.seq > p_after
     ORDER BY o.seq
     LIMIT p_limit
$$;

-- The highest sequence number this node has ever issued on its upstream hop.
CREATE FUNCTION lt.outbox_high() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END
      FROM lt.outbox_seq_seq s
$$;

-- The parent confirmed everything up to p_seq: forget it.
CREATE FUNCTION lt.upstream_acked(p_seq bigint, p_parent text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM lt.outbox WHERE seq <= p_seq;
    UPDATE lt.upstream
       SET acked_seq = greatest(acked_seq, p_seq), acked_at = now(), last_contact = now(),
           parent_unit = coalesce(p_parent, parent_unit), state = 'streaming', last_error = NULL,
           updated_at = now();
    RETURN (SELECT count(*) FROM lt.outbox);
END $$;

-- The parent's position and this node's disagree: either the parent has applied
-- more of this hop than this node remembers issuing (this database was restored from
-- an older backup), or less than it acknowledged (the parent lost rows). Move the
-- sequence past the parent's position if needed and queue every leaf row again after
-- it; versions make repeats harmless, and rows the parent holds at newer versions
-- stay there.
CREATE FUNCTION lt.upstream_rewound(p_parent_seq bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    high bigint := lt.outbox_high();
BEGIN
    PERFORM lt.writer_lock();
    DELETE FROM lt.outbox;
    IF p_parent_seq > high THEN
        PERFORM setval('lt.outbox_seq_seq', p_parent_seq, true);
    END IF;
    UPDATE lt.upstream
       SET last_error = format('positions disagreed: parent had applied %s, this node had issued %s and seen acks up to %s; full resync',
                               p_parent_seq, high, acked_seq),
           acked_seq = p_parent_seq, updated_at = now();
    RETURN lt.requeue_all();
END $$;

CREATE FUNCTION lt.upstream_state(p_state text, p_error text) RETURNS void
LANGUAGE sql AS $$
    UPDATE lt.upstream
       SET state = p_state, last_error = coalesce(p_error, last_error), updated_at = now(),
           last_contact = CASE WHEN p_state IN ('streaming', 'idle') THEN now() ELSE last_contact END
$$;

-- Parent side: a child said HELLO. Accept only a unit that is (or was, for some
-- period) a direct child of this node. Returns the child's resume point.
CREATE FUNCTION lt.child_hello(p_child text, p_child_max bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    me text := (SELECT unit_code FROM lt.node);
    r bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lt.unit_ancestor WHERE descendant = p_child AND ancestor = me AND depth = 1) THEN
        RAISE EXCEPTION 'unit % is not a child of % in any period', p_child, me
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO lt.child_link (child_unit) VALUES (p_child) ON CONFLICT DO NOTHING;
    UPDATE lt.child_link
       SET last_contact = now(), child_max_seq = p_child_max, state = 'connected',
           last_error = CASE WHEN p_child_max < last_applied_seq
                             THEN format('child sequence went backwards: it has issued up to %s, this node applied up to %s',
                                         p_child_max, last_applied_seq)
                             ELSE last_error END
     WHERE child_unit = p_child
    RETURNING last_applied_seq INTO r;
    RETURN r;
END $$;

-- A single record the database refuses even alone (a poison record): keep it for audit
-- and move the child's position past it, so the link keeps flowing.
CREATE FUNCTION lt.quarantine(p_child text, p_prev bigint, p_seq bigint, p_reason text, p_record jsonb)
RETURNS bigint
LANGUAGE plpgsql AS $$
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
       SET last_applied_seq = p_seq, rejected_rows = rejected_rows + 1, last_error = p_reason
     WHERE child_unit = p_child;
    RETURN p_seq;
END $$;

-- The periodic link-state write of a parent: last contact per child, from memory.
CREATE FUNCTION lt.children_seen(p_units text[], p_seen double precision[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE lt.child_link l
       SET last_contact = greatest(l.last_contact, to_timestamp(s.seen))
      FROM unnest(p_units, p_seen) AS s(unit, seen)
     WHERE l.child_unit = s.unit
$$;
