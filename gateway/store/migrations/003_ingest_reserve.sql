-- v3 (compatible with v1+): ingest_reserve(), the ingest transaction's first steps in one round trip
--
-- The group-commit transaction used to run roster check, session locks, dedupe claims,
-- conversation upserts and stream positions as five statements. ingest_reserve() runs the same
-- statements, in the same order and with the same locks, in one call — but only when the
-- caller's view is current: the tenant's newest roster is p_roster_version and every session
-- record in p_records exists with the version in p_versions (the one the caller wrote last).
-- Otherwise it returns the single row (ord = -1) after taking at most the session locks, and
-- the caller goes the long way (rosters re-read, sessions opened or created) in the same
-- transaction.
--
-- Items (one per distinct (channel, dedupe digest), ordinal = array position): p_item_channels,
-- p_item_digests, p_item_convs (1-based index into the p_conv_* arrays). Conversations:
-- p_conv_channels, p_conv_digests (blind handle digest), p_conv_sealed (sealed handle, stored
-- only when the conversation is created). Result: one row per newly claimed item, in ordinal
-- order, with its conversation, its gap-free sequence number (consecutive within a
-- conversation, in ordinal order) and its stream position (ascending with the ordinal, drawn
-- while the session locks are held). Items not returned were already stored (duplicates).
CREATE FUNCTION ingest_reserve(
    p_tenant text, p_kind text, p_roster_version bigint, p_records text[], p_versions bigint[],
    p_item_channels text[], p_item_digests bytea[], p_item_convs bigint[],
    p_conv_channels text[], p_conv_digests bytea[], p_conv_sealed bytea[])
RETURNS TABLE (ord bigint, conversation_id uuid, seq bigint, stream_pos bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_current integer;
    v_fresh bigint[];
    v_conv_idx bigint[];
    v_conv_id uuid[];
    v_conv_first bigint[];
BEGIN
    IF (SELECT max(r.version) FROM rosters r WHERE r.tenant_id = p_tenant)
            IS DISTINCT FROM p_roster_version THEN
        RETURN QUERY SELECT -1::bigint, NULL::uuid, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    -- 1. the sessions, locked in record order (the order every writer uses)
    PERFORM 1 FROM crypto_states s
    WHERE s.tenant_id = p_tenant AND s.kind = p_kind AND s.record_id = ANY (p_records)
    ORDER BY s.record_id
    FOR UPDATE;
    SELECT count(*) INTO v_current
    FROM crypto_states s
    JOIN unnest(p_records, p_versions) AS e (record_id, version)
        ON e.record_id = s.record_id AND e.version = s.version
    WHERE s.tenant_id = p_tenant AND s.kind = p_kind;
    IF v_current <> cardinality(p_records) THEN
        RETURN QUERY SELECT -1::bigint, NULL::uuid, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    -- 2. dedupe claims in (channel, digest) order
    WITH claimed AS (
        INSERT INTO inbound_dedupe (tenant_id, channel_id, dedupe_digest)
        SELECT p_tenant, u.channel_id, u.digest
        FROM unnest(p_item_channels, p_item_digests) AS u (channel_id, digest)
        ORDER BY u.channel_id, u.digest
        ON CONFLICT (tenant_id, channel_id, dedupe_digest) DO NOTHING
        RETURNING inbound_dedupe.channel_id, inbound_dedupe.dedupe_digest)
    SELECT coalesce(array_agg(i.ord ORDER BY i.ord), '{}')
    INTO v_fresh
    FROM claimed c
    JOIN unnest(p_item_channels, p_item_digests) WITH ORDINALITY AS i (channel_id, digest, ord)
        ON i.channel_id = c.channel_id AND i.digest = c.dedupe_digest;
    IF cardinality(v_fresh) = 0 THEN
        RETURN;
    END IF;

    -- 3. conversations created or locked in (channel, digest) order; n numbers each
    WITH wanted AS (
        SELECT i.conv, count(*) AS n
        FROM unnest(p_item_convs) WITH ORDINALITY AS i (conv, ord)
        WHERE i.ord = ANY (v_fresh)
        GROUP BY i.conv),
    convs AS (
        SELECT cv.idx, cv.channel_id, cv.digest, cv.sealed, w.n
        FROM wanted w
        JOIN unnest(p_conv_channels, p_conv_digests, p_conv_sealed) WITH ORDINALITY
            AS cv (channel_id, digest, sealed, idx) ON cv.idx = w.conv),
    reserved AS (
        INSERT INTO conversations AS c
            (tenant_id, channel_id, handle_digest, handle_sealed, next_seq, last_inbound_at)
        SELECT p_tenant, convs.channel_id, convs.digest, convs.sealed, convs.n + 1, now()
        FROM convs
        ORDER BY convs.channel_id, convs.digest
        ON CONFLICT (tenant_id, channel_id, handle_digest) DO UPDATE
        SET next_seq = c.next_seq + EXCLUDED.next_seq - 1, updated_at = now(),
            last_inbound_at = now()
        RETURNING c.conversation_id, c.channel_id, c.handle_digest, c.next_seq)
    SELECT array_agg(convs.idx), array_agg(r.conversation_id), array_agg(r.next_seq - convs.n)
    INTO v_conv_idx, v_conv_id, v_conv_first
    FROM reserved r
    JOIN convs ON convs.channel_id = r.channel_id AND convs.digest = r.handle_digest;

    -- 4. stream positions, after the session locks; ascending with the ordinal
    RETURN QUERY
    WITH positions AS (
        SELECT p.pos, row_number() OVER (ORDER BY p.pos) AS rank
        FROM (SELECT nextval('envelope_stream_pos') AS pos
              FROM generate_series(1, cardinality(v_fresh))) AS p),
    fresh AS (
        SELECT i.ord, i.conv,
               row_number() OVER (ORDER BY i.ord) AS rank,
               row_number() OVER (PARTITION BY i.conv ORDER BY i.ord) AS nth
        FROM unnest(p_item_convs) WITH ORDINALITY AS i (conv, ord)
        WHERE i.ord = ANY (v_fresh)),
    slots AS (
        SELECT s.idx, s.conversation_id, s.first_seq
        FROM unnest(v_conv_idx, v_conv_id, v_conv_first) AS s (idx, conversation_id, first_seq))
    SELECT f.ord, s.conversation_id, s.first_seq + f.nth - 1, p.pos
    FROM fresh f
    JOIN slots s ON s.idx = f.conv
    JOIN positions p ON p.rank = f.rank
    ORDER BY f.ord;
END
$$;
