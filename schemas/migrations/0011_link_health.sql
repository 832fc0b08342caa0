-- 0011_link_health.sql — which link is stuck, seen from the parent. The daemon marks a
-- child's link 'silent' when the child's connection closes (or its session is forgotten)
-- and no other connection of that child is open; last_contact keeps the time it was
-- last heard from. A new HELLO ('connected'), a batch ('streaming') or the periodic
-- contact write of a live session ('connected') clears it.

CREATE FUNCTION lt.child_silent(p_child text, p_seen double precision) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
    UPDATE lt.child_link
       SET state = 'silent', last_contact = greatest(last_contact, to_timestamp(p_seen))
     WHERE child_unit = p_child AND state <> 'silent'
$$;

CREATE OR REPLACE FUNCTION lt.children_seen(p_units text[], p_seen double precision[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = lt, pg_temp AS $$
    UPDATE lt.child_link l
       SET last_contact = greatest(l.last_contact, to_timestamp(s.seen)),
           state = CASE WHEN l.state = 'silent' THEN 'connected' ELSE l.state END
      FROM unnest(p_units, p_seen) AS s(unit, seen)
     WHERE l.child_unit = s.unit
$$;

DO $$
BEGIN
    IF to_regclass('lt.function_grant') IS NOT NULL THEN
        INSERT INTO lt.function_grant (role, signature) VALUES
            ('lienthong_daemon', 'lt.child_silent(text, double precision)')
        ON CONFLICT DO NOTHING;
    END IF;
    IF to_regprocedure('lt.apply_privileges()') IS NOT NULL THEN
        PERFORM lt.apply_privileges();
    END IF;
END $$;
