-- imgmod 0.1: the image pipeline's control plane.
\echo Use "CREATE EXTENSION imgmod" to load this file. \quit

-- ------------------------------------------------------------- installation

CREATE TABLE imgmod.installation (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton)
);
INSERT INTO imgmod.installation DEFAULT VALUES;
COMMENT ON TABLE imgmod.installation IS 'One row: the identity of this imgmod installation, made at CREATE EXTENSION. Shared caches (Redis) namespace their keys with it, so two databases, or a database created again, never read each other''s entries.';
COMMENT ON COLUMN imgmod.installation.id IS 'Random id of this installation; part of every Redis key.';
COMMENT ON COLUMN imgmod.installation.created_at IS 'When the extension was created.';
COMMENT ON COLUMN imgmod.installation.singleton IS 'Always true: keeps the table to one row.';

-- ------------------------------------------------------------------ presets

CREATE TABLE imgmod.presets (
    name          text PRIMARY KEY
                  CONSTRAINT preset_name_is_a_key_part CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$')
                  CONSTRAINT preset_name_is_not_reserved CHECK (name NOT IN ('original', 'master', 'source')),
    width         integer CHECK (width BETWEEN 1 AND 10000),
    height        integer CHECK (height BETWEEN 1 AND 10000),
    fit           text NOT NULL DEFAULT 'contain' CHECK (fit IN ('contain', 'cover', 'pad')),
    quality       integer NOT NULL DEFAULT 80 CHECK (quality BETWEEN 1 AND 100),
    allow_upscale boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT preset_has_a_size CHECK (width IS NOT NULL OR height IS NOT NULL)
);
COMMENT ON TABLE imgmod.presets IS
  'The catalogue''s variant sizes. Every ready image has one variant per preset. Operators may insert, update or delete rows; new uploads use the presets present when their render job runs.';
COMMENT ON COLUMN imgmod.presets.name IS 'Preset name as used in imgmod.fetch() and object keys: lowercase letters, digits, _ and -; original and master are reserved for the two masters, source for the render source''s cache key.';
COMMENT ON COLUMN imgmod.presets.width IS 'Box width in pixels; NULL means unconstrained.';
COMMENT ON COLUMN imgmod.presets.height IS 'Box height in pixels; NULL means unconstrained.';
COMMENT ON COLUMN imgmod.presets.fit IS 'contain: fit inside the box; cover: fill the box, crop the centre; pad: contain, then pad to the box with imgmod.background.';
COMMENT ON COLUMN imgmod.presets.quality IS 'JPEG quality 1-100 of this variant.';
COMMENT ON COLUMN imgmod.presets.allow_upscale IS 'When false (default) an image smaller than the box is never enlarged.';
COMMENT ON COLUMN imgmod.presets.created_at IS 'When the preset was added.';

INSERT INTO imgmod.presets (name, width, height, fit, quality) VALUES
    ('large',  1920, NULL, 'contain', 80),
    ('medium', 1024, NULL, 'contain', 80),
    ('small',   512, NULL, 'contain', 80),
    ('thumb',   256,  256, 'cover',   80);

-- The presets this script seeds, as a function: the backup filter and the
-- restore trigger below must agree on what "untouched" means.
CREATE FUNCTION imgmod._is_seeded_preset(p_name text, p_width integer, p_height integer,
                                         p_fit text, p_quality integer, p_allow_upscale boolean)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS
$$
    SELECT EXISTS (SELECT 1 FROM (VALUES ('large', 1920, NULL::integer, 'contain', 80, false),
                                         ('medium', 1024, NULL::integer, 'contain', 80, false),
                                         ('small', 512, NULL::integer, 'contain', 80, false),
                                         ('thumb', 256, 256, 'cover', 80, false)) AS d(n, w, h, f, q, u)
                    WHERE ROW(d.n, d.w, d.h, d.f, d.q, d.u)
                          IS NOT DISTINCT FROM ROW(p_name, p_width, p_height, p_fit, p_quality, p_allow_upscale))
$$;
COMMENT ON FUNCTION imgmod._is_seeded_preset(text, integer, integer, text, integer, boolean) IS
  'Internal: true for a preset row exactly as CREATE EXTENSION seeds it. pg_dump leaves such rows out (the restore seeds them again).';

-- A restore runs CREATE EXTENSION (seeding the four presets) and then
-- copies the dumped rows, which include the seeded presets an operator
-- changed: such a row replaces its untouched seed instead of failing on the
-- duplicate name.
CREATE FUNCTION imgmod._preset_replaces_seed()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    DELETE FROM imgmod.presets p
     WHERE p.name = NEW.name
       AND imgmod._is_seeded_preset(p.name, p.width, p.height, p.fit, p.quality, p.allow_upscale);
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION imgmod._preset_replaces_seed() IS
  'Internal trigger: an inserted preset whose name is a seeded preset that was never changed replaces that seed (so restoring a dump that carries an edited seeded preset works).';
CREATE TRIGGER preset_replaces_seed BEFORE INSERT ON imgmod.presets
    FOR EACH ROW EXECUTE FUNCTION imgmod._preset_replaces_seed();
COMMENT ON TRIGGER preset_replaces_seed ON imgmod.presets IS
  'An inserted preset named like an untouched seeded preset replaces it; restores of dumps with edited seeded presets rely on this.';

-- ------------------------------------------------------------------- images

CREATE TABLE imgmod.images (
    id               bigserial PRIMARY KEY,
    status           text NOT NULL DEFAULT 'received'
                     CHECK (status IN ('received', 'processing', 'ready', 'failed', 'dead', 'deleted')),
    current_version  integer,
    original_name    text,
    claimed_type     text,
    detected_format  text NOT NULL,
    type_mismatch    boolean NOT NULL DEFAULT false,
    source_width     integer NOT NULL,
    source_height    integer NOT NULL,
    source_bytes     bigint NOT NULL,
    sha256           text NOT NULL,
    width            integer NOT NULL,
    height           integer NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    ready_at         timestamptz,
    last_error       text
);
CREATE INDEX images_sha256_idx ON imgmod.images (sha256);
COMMENT ON TABLE imgmod.images IS 'One row per uploaded image. status: received (queued), processing, ready, failed (a retry is scheduled) or dead (retries exhausted; see last_error and imgmod.retry()). After imgmod.replace() the status follows the new version while current_version keeps serving the old one; the source_*, sha256, width and height columns describe the newest bytes.';
COMMENT ON COLUMN imgmod.images.id IS 'Image id returned by imgmod.upload().';
COMMENT ON COLUMN imgmod.images.status IS 'received, processing, ready, failed (will retry), dead (gave up) or deleted (imgmod.delete(); its objects are purged).';
COMMENT ON COLUMN imgmod.images.current_version IS 'The version served by imgmod.fetch() without a version; NULL until the first version is ready. It moves to a newer version only when that version is ready.';
COMMENT ON COLUMN imgmod.images.original_name IS 'File name the caller claimed; kept only to detect mismatches.';
COMMENT ON COLUMN imgmod.images.claimed_type IS 'Content type the caller claimed; kept only to detect mismatches.';
COMMENT ON COLUMN imgmod.images.detected_format IS 'Format decided by the magic number: jpeg, png, gif, webp, heif, avif, tiff or bmp.';
COMMENT ON COLUMN imgmod.images.type_mismatch IS 'True when the claimed name or type disagreed with the bytes (accepted under imgmod.mismatch_policy = warn).';
COMMENT ON COLUMN imgmod.images.source_width IS 'Width of the uploaded image as stored, before orientation.';
COMMENT ON COLUMN imgmod.images.source_height IS 'Height of the uploaded image as stored, before orientation.';
COMMENT ON COLUMN imgmod.images.source_bytes IS 'Size of the uploaded bytes.';
COMMENT ON COLUMN imgmod.images.sha256 IS 'SHA-256 (hex) of the uploaded bytes.';
COMMENT ON COLUMN imgmod.images.width IS 'Upright width of the normalised master.';
COMMENT ON COLUMN imgmod.images.height IS 'Upright height of the normalised master.';
COMMENT ON COLUMN imgmod.images.created_at IS 'Upload time.';
COMMENT ON COLUMN imgmod.images.updated_at IS 'Last status change.';
COMMENT ON COLUMN imgmod.images.ready_at IS 'When the current version became ready.';
COMMENT ON COLUMN imgmod.images.last_error IS 'The most recent render error, if any.';

CREATE TABLE imgmod.image_versions (
    image_id        bigint NOT NULL REFERENCES imgmod.images (id) ON DELETE CASCADE,
    version         integer NOT NULL CHECK (version >= 1),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'ready', 'failed', 'superseded', 'purged')),
    width           integer NOT NULL,
    height          integer NOT NULL,
    master_method   text CHECK (master_method IN ('lossless', 'reencoded')),
    staged          bytea,
    staged_bytes    integer,
    master_sha256   text CHECK (master_sha256 ~ '^[0-9a-f]{64}$'),
    hires_key       text,
    hires_bytes     integer,
    master_key      text,
    master_bytes    integer,
    origin          text NOT NULL DEFAULT 'upload' CHECK (origin IN ('upload', 'replace', 'edit', 'revert')),
    base_version    integer,
    ops             jsonb,
    focus_x         double precision CHECK (focus_x BETWEEN 0 AND 1),
    focus_y         double precision CHECK (focus_y BETWEEN 0 AND 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    stored_at       timestamptz,
    superseded_at   timestamptz,
    purged_at       timestamptz,
    PRIMARY KEY (image_id, version),
    -- only an edit's master is made later, by the worker
    CONSTRAINT master_known_unless_edit CHECK (origin = 'edit'
        OR (master_method IS NOT NULL AND staged_bytes IS NOT NULL AND master_sha256 IS NOT NULL)),
    CONSTRAINT derived_versions_name_their_base CHECK ((origin IN ('edit', 'revert')) = (base_version IS NOT NULL)),
    CONSTRAINT ops_only_for_edits CHECK ((origin = 'edit') = (ops IS NOT NULL))
);
ALTER TABLE imgmod.image_versions ALTER COLUMN staged SET STORAGE EXTERNAL;
COMMENT ON TABLE imgmod.image_versions IS 'One row per version of an image (upload() makes version 1, replace() the next ones). The normalised full-resolution JPEG is staged here until a worker has stored it; then staged is cleared. Rows of purged versions stay as history.';
COMMENT ON COLUMN imgmod.image_versions.image_id IS 'The image.';
COMMENT ON COLUMN imgmod.image_versions.version IS 'Version number, 1 for the upload.';
COMMENT ON COLUMN imgmod.image_versions.status IS 'pending until every object is stored and every variant row written; then ready; superseded once a newer version is current (its objects stay for imgmod.superseded_retention); purged when its objects, cache keys and variant rows are gone.';
COMMENT ON COLUMN imgmod.image_versions.width IS 'Upright width of this version.';
COMMENT ON COLUMN imgmod.image_versions.height IS 'Upright height of this version.';
COMMENT ON COLUMN imgmod.image_versions.master_method IS 'lossless: JPEG coefficients kept (for an edit: every op done on the DCT coefficients), metadata dropped; reencoded: decoded, normalised or edited, and encoded again once. NULL while an edit''s master is not made yet.';
COMMENT ON COLUMN imgmod.image_versions.staged IS 'The normalised full-resolution JPEG, until stored (then NULL).';
COMMENT ON COLUMN imgmod.image_versions.staged_bytes IS 'Size of the normalised full-resolution JPEG (NULL while an edit''s master is not made yet).';
COMMENT ON COLUMN imgmod.image_versions.master_sha256 IS 'SHA-256 (hex) of the normalised full-resolution master, as imgmod''s normaliser (or an edit) produced it; NULL while an edit''s master is not made yet. Bytes read back from Redis or the hi-res store are used only when they hash to this.';
COMMENT ON COLUMN imgmod.image_versions.hires_key IS 'Object key of the full-resolution master in the hi-res store.';
COMMENT ON COLUMN imgmod.image_versions.hires_bytes IS 'Size of the full-resolution master.';
COMMENT ON COLUMN imgmod.image_versions.master_key IS 'Object key of the compressed master (serving and later derivation) in the main store.';
COMMENT ON COLUMN imgmod.image_versions.master_bytes IS 'Size of the compressed master.';
COMMENT ON COLUMN imgmod.image_versions.origin IS 'What produced this version: upload (imgmod.upload), replace (imgmod.replace), edit (imgmod.edit: ops applied to base_version''s master) or revert (imgmod.revert: base_version''s master again).';
COMMENT ON COLUMN imgmod.image_versions.base_version IS 'edit and revert: the version whose full-resolution master this one was made from.';
COMMENT ON COLUMN imgmod.image_versions.ops IS 'edit: the operations applied, as given to imgmod.edit().';
COMMENT ON COLUMN imgmod.image_versions.focus_x IS 'The focal point (0..1 of the width, from the left) that cover presets crop around; NULL: the centre. Set by an edit''s focus op and carried through later ops and edits.';
COMMENT ON COLUMN imgmod.image_versions.focus_y IS 'The focal point (0..1 of the height, from the top); see focus_x.';
COMMENT ON COLUMN imgmod.image_versions.created_at IS 'When the version was registered.';
COMMENT ON COLUMN imgmod.image_versions.stored_at IS 'When its objects were stored.';
COMMENT ON COLUMN imgmod.image_versions.superseded_at IS 'When a newer version became current; its purge is due imgmod.superseded_retention later.';
COMMENT ON COLUMN imgmod.image_versions.purged_at IS 'When its objects were deleted from both stores and its variant rows and Redis keys removed.';

CREATE TABLE imgmod.variants (
    image_id    bigint NOT NULL,
    version     integer NOT NULL,
    preset      text NOT NULL,
    width       integer NOT NULL,
    height      integer NOT NULL,
    bytes       integer NOT NULL,
    object_key  text NOT NULL CHECK (object_key ~ '^[a-z0-9/._-]+$'),
    etag        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, version, preset),
    FOREIGN KEY (image_id, version) REFERENCES imgmod.image_versions (image_id, version) ON DELETE CASCADE
);
COMMENT ON TABLE imgmod.variants IS 'The rendered variants, one row per (image, version, preset): what the CDN origin reads. Rows of a version appear together, when the version becomes ready.';
COMMENT ON COLUMN imgmod.variants.image_id IS 'The image.';
COMMENT ON COLUMN imgmod.variants.version IS 'The image version this variant was rendered from.';
COMMENT ON COLUMN imgmod.variants.preset IS 'The preset (imgmod.presets.name) at render time.';
COMMENT ON COLUMN imgmod.variants.width IS 'Width of the variant in pixels.';
COMMENT ON COLUMN imgmod.variants.height IS 'Height of the variant in pixels.';
COMMENT ON COLUMN imgmod.variants.bytes IS 'Size of the variant JPEG.';
COMMENT ON COLUMN imgmod.variants.object_key IS 'Object key in the main store (characters [a-z0-9/._-] only).';
COMMENT ON COLUMN imgmod.variants.etag IS 'Strong entity tag of the bytes, quoted: the ETag the S3 store answered the PUT with (the MD5 hex of the bytes for a plain PUT), or the MD5 imgmod computed for the local store.';
COMMENT ON COLUMN imgmod.variants.created_at IS 'When the variant was stored.';

-- ---------------------------------------------------------------- work queue

CREATE TABLE imgmod.jobs (
    id               bigserial PRIMARY KEY,
    image_id         bigint NOT NULL,
    version          integer NOT NULL,
    kind             text NOT NULL DEFAULT 'render' CHECK (kind IN ('render', 'purge')),
    state            text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_by       integer,
    claimed_by_start timestamptz,
    claimed_at       timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    FOREIGN KEY (image_id, version) REFERENCES imgmod.image_versions (image_id, version) ON DELETE CASCADE
);
CREATE INDEX jobs_runnable_idx ON imgmod.jobs (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX jobs_image_idx ON imgmod.jobs (image_id);
COMMENT ON TABLE imgmod.jobs IS 'Work queue of the background workers. A job is claimed with FOR UPDATE SKIP LOCKED; a failed attempt is retried with jittered exponential backoff (imgmod.retry_base_delay) until imgmod.max_attempts, then it is dead.';
COMMENT ON COLUMN imgmod.jobs.id IS 'Job id.';
COMMENT ON COLUMN imgmod.jobs.image_id IS 'The image concerned.';
COMMENT ON COLUMN imgmod.jobs.version IS 'The version to render or purge.';
COMMENT ON COLUMN imgmod.jobs.kind IS 'render: store the masters and render every preset; purge: delete a superseded version''s objects from both stores, its Redis keys and its variant rows.';
COMMENT ON COLUMN imgmod.jobs.state IS 'queued (waiting for next_attempt_at), running, done or dead.';
COMMENT ON COLUMN imgmod.jobs.attempts IS 'Attempts started so far.';
COMMENT ON COLUMN imgmod.jobs.next_attempt_at IS 'Earliest time a worker may take the job.';
COMMENT ON COLUMN imgmod.jobs.claimed_by IS 'PID of the worker running it; a job whose worker (this PID with this start time) is gone is reclaimed.';
COMMENT ON COLUMN imgmod.jobs.claimed_by_start IS 'Start time of the worker process that claimed it (pg_stat_activity.backend_start): with claimed_by it identifies the process, so a reused PID is not mistaken for the worker.';
COMMENT ON COLUMN imgmod.jobs.claimed_at IS 'When the running attempt started.';
COMMENT ON COLUMN imgmod.jobs.last_error IS 'Error of the last failed attempt.';
COMMENT ON COLUMN imgmod.jobs.created_at IS 'When the job was queued.';
COMMENT ON COLUMN imgmod.jobs.finished_at IS 'When it finished (done or dead).';

-- ------------------------------------------------------------ status events

CREATE TABLE imgmod.events (
    id            bigserial PRIMARY KEY,
    image_id      bigint NOT NULL,
    version       integer,
    status        text NOT NULL,
    stage         text,
    attempt       integer,
    error         text,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at  timestamptz,
    txid          xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX events_image_idx ON imgmod.events (image_id, id);
CREATE INDEX events_commit_order_idx ON imgmod.events (txid, id);
CREATE INDEX events_unpublished_idx ON imgmod.events (id) WHERE published_at IS NULL;
COMMENT ON TABLE imgmod.events IS 'Transactional outbox of status changes. Each row is written in the same transaction as the change and sent as JSON on NOTIFY imgmod_status when that transaction commits.';
COMMENT ON COLUMN imgmod.events.id IS 'Event id; consumers de-duplicate on it.';
COMMENT ON COLUMN imgmod.events.image_id IS 'The image.';
COMMENT ON COLUMN imgmod.events.version IS 'The image version concerned.';
COMMENT ON COLUMN imgmod.events.status IS 'received, stored, rendered, ready, failed, retried, dead, superseded, purged or deleted.';
COMMENT ON COLUMN imgmod.events.stage IS 'Pipeline stage: upload, render, store or purge.';
COMMENT ON COLUMN imgmod.events.attempt IS 'Attempt number of the job, when one is concerned.';
COMMENT ON COLUMN imgmod.events.error IS 'Error message for failed and dead.';
COMMENT ON COLUMN imgmod.events.payload IS 'The JSON document sent to subscribers.';
COMMENT ON COLUMN imgmod.events.created_at IS 'When the change happened.';
COMMENT ON COLUMN imgmod.events.published_at IS 'When an external publisher acknowledged it; NULL while pending.';
COMMENT ON COLUMN imgmod.events.txid IS 'The transaction that wrote the event. A consumer with a cursor (the edge purger) reads events in (txid, id) order and only from transactions older than every one still running, so an event whose transaction commits late is never skipped.';

CREATE FUNCTION imgmod._emit(p_image bigint, p_version integer, p_status text,
                             p_stage text, p_attempt integer, p_error text,
                             p_variants jsonb DEFAULT NULL, p_detail jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v_id bigint := nextval('imgmod.events_id_seq'::regclass);
    v_payload jsonb;
    v_hint text;
BEGIN
    v_payload := jsonb_strip_nulls(jsonb_build_object(
        'event_id', v_id, 'image_id', p_image, 'version', p_version,
        'status', p_status, 'stage', p_stage, 'attempt', p_attempt,
        -- subscribers get the summary; the job row keeps the details
        'error', left(p_error, 500), 'variants', p_variants,
        'at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))
        || coalesce(p_detail, '{}');
    INSERT INTO imgmod.events (id, image_id, version, status, stage, attempt, error, payload)
    VALUES (v_id, p_image, p_version, p_status, p_stage, p_attempt, p_error, v_payload);
    -- A NOTIFY payload must stay under 8000 bytes or pg_notify fails (and
    -- with it the transaction that made the change).  Many or long presets
    -- make a ready event longer than that: listeners then get the event's
    -- identity and read the rest from imgmod.events, which is the truth
    -- anyway (any role may pg_notify on this channel).
    v_hint := v_payload::text;
    IF octet_length(v_hint) > 7000 THEN
        v_hint := jsonb_build_object('event_id', v_id, 'image_id', p_image, 'version', p_version,
                                     'status', p_status, 'stage', p_stage, 'attempt', p_attempt,
                                     'at', v_payload->'at', 'truncated', true)::text;
    END IF;
    -- Delivered only if the surrounding transaction commits.
    PERFORM pg_notify('imgmod_status', v_hint);
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION imgmod._emit(bigint, integer, text, text, integer, text, jsonb, jsonb) IS
  'Internal: records a status event in the outbox and queues its NOTIFY imgmod_status, both in the caller''s transaction. p_detail adds fields to the payload (purge_at, deleted). A payload over 7000 bytes is notified as its identity with "truncated": true; imgmod.events holds the whole event.';

CREATE FUNCTION imgmod._supersede(p_image bigint, p_version integer, p_retention interval)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    UPDATE imgmod.image_versions v SET status = 'superseded', superseded_at = now()
     WHERE v.image_id = p_image AND v.version = p_version AND v.status IN ('pending', 'ready', 'failed');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- Pages and CDN edges may still hold the old version's immutable URLs
    -- for a while: its objects go only after the retention.
    INSERT INTO imgmod.jobs (image_id, version, kind, next_attempt_at)
    VALUES (p_image, p_version, 'purge', now() + p_retention);
    PERFORM imgmod._emit(p_image, p_version, 'superseded', 'purge', NULL, NULL, NULL,
                         jsonb_build_object('purge_at', to_char((now() + p_retention) AT TIME ZONE 'UTC',
                                                                'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
    RETURN true;
END
$$;
COMMENT ON FUNCTION imgmod._supersede(bigint, integer, interval) IS
  'Internal: marks a version superseded and schedules the purge of its objects after the retention; emits the superseded event. Returns false when the version was already superseded or purged.';

-- ------------------------------------------------------- idempotency keys

CREATE TABLE imgmod.idempotency_keys (
    role_name       name NOT NULL,
    key             text NOT NULL CONSTRAINT idempotency_key_length CHECK (char_length(key) BETWEEN 1 AND 200),
    operation       text NOT NULL CHECK (operation IN ('upload', 'replace')),
    request_sha256  text NOT NULL,
    image_id        bigint,
    version         integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role_name, key)
);
CREATE INDEX idempotency_keys_created_idx ON imgmod.idempotency_keys (created_at);
COMMENT ON TABLE imgmod.idempotency_keys IS 'Idempotency keys of upload() and replace(): a call that repeats a key of the same role with the same request returns the first call''s result and registers nothing. Written in the caller''s transaction, so a rolled-back call leaves no key; kept imgmod.idempotency_retention, then trimmed by the publisher.';
COMMENT ON COLUMN imgmod.idempotency_keys.role_name IS 'The calling role: keys of different roles never meet.';
COMMENT ON COLUMN imgmod.idempotency_keys.key IS 'The key the application sent (1 to 200 characters), one per user action.';
COMMENT ON COLUMN imgmod.idempotency_keys.operation IS 'upload or replace.';
COMMENT ON COLUMN imgmod.idempotency_keys.request_sha256 IS 'SHA-256 (hex) of the bytes sent; with operation (and image_id for replace) it decides whether a repeat is the same request.';
COMMENT ON COLUMN imgmod.idempotency_keys.image_id IS 'The image created (upload) or replaced (replace).';
COMMENT ON COLUMN imgmod.idempotency_keys.version IS 'The version that call registered.';
COMMENT ON COLUMN imgmod.idempotency_keys.created_at IS 'When the key was first used.';

-- ---------------------------------------------------------------- rejections

CREATE TABLE imgmod.rejections (
    id                bigserial PRIMARY KEY,
    outcome           text NOT NULL CHECK (outcome IN ('rejected', 'accepted')),
    reason            text NOT NULL,
    sqlstate          text NOT NULL,
    message           text NOT NULL,
    claimed_name      text,
    claimed_type      text,
    detected_format   text,
    bytes             bigint NOT NULL,
    sha256            text,
    role_name         text,
    application_name  text,
    client_addr       inet,
    backend_pid       integer,
    occurred_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejections_occurred_idx ON imgmod.rejections (occurred_at);
COMMENT ON TABLE imgmod.rejections IS 'Audit of refused or suspicious input (the abnormal-data-access record). Written by a background worker from shared memory, so a row survives the rollback of the upload that caused it.';
COMMENT ON COLUMN imgmod.rejections.id IS 'Audit row id.';
COMMENT ON COLUMN imgmod.rejections.outcome IS 'rejected: the upload raised an error; accepted: a type mismatch accepted with a warning (imgmod.mismatch_policy = warn).';
COMMENT ON COLUMN imgmod.rejections.reason IS 'Stable reason name, e.g. unknown_format, truncated, too_many_pixels (see the README''s SQLSTATE table).';
COMMENT ON COLUMN imgmod.rejections.sqlstate IS 'SQLSTATE raised for this reason.';
COMMENT ON COLUMN imgmod.rejections.message IS 'The error message given to the caller.';
COMMENT ON COLUMN imgmod.rejections.claimed_name IS 'File name the caller claimed.';
COMMENT ON COLUMN imgmod.rejections.claimed_type IS 'Content type the caller claimed.';
COMMENT ON COLUMN imgmod.rejections.detected_format IS 'What the magic number says.';
COMMENT ON COLUMN imgmod.rejections.bytes IS 'Size of the refused input.';
COMMENT ON COLUMN imgmod.rejections.sha256 IS 'SHA-256 (hex) of the refused input (NULL when it was too large to hash).';
COMMENT ON COLUMN imgmod.rejections.role_name IS 'Session role of the caller.';
COMMENT ON COLUMN imgmod.rejections.application_name IS 'application_name of the caller''s session.';
COMMENT ON COLUMN imgmod.rejections.client_addr IS 'Client address of the caller''s session (NULL for a Unix socket).';
COMMENT ON COLUMN imgmod.rejections.backend_pid IS 'PID of the caller''s backend.';
COMMENT ON COLUMN imgmod.rejections.occurred_at IS 'When the input was refused.';
COMMENT ON COLUMN imgmod.rejections.recorded_at IS 'When the worker wrote this row.';

-- ------------------------------------------------------------------ C entry

CREATE FUNCTION imgmod.upload(data bytea, filename text DEFAULT NULL, content_type text DEFAULT NULL,
                              idempotency_key text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'imgmod_upload'
LANGUAGE C VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION imgmod.upload(bytea, text, text, text) IS
  'Validates (magic number, limits, full decode), normalises (orientation, sRGB, no metadata, JPEG) and registers an image in the caller''s transaction; returns its id. Raises a 22I.. SQLSTATE naming the reason on bad input, which is also recorded in imgmod.rejections. Workers render the presets after COMMIT. With an idempotency_key, a retry of the same request returns the first call''s id and registers nothing.';

CREATE FUNCTION imgmod.replace(image_id bigint, data bytea, filename text DEFAULT NULL, content_type text DEFAULT NULL,
                               idempotency_key text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'imgmod_replace'
LANGUAGE C VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION imgmod.replace(bigint, bytea, text, text, text) IS
  'Registers new bytes as the next version of an existing image, with the same checks and normalisation as upload(), in the caller''s transaction; returns the new version number. The current version keeps being served until the new one is ready; then the old one is superseded and its objects, Redis keys and variant rows are purged after imgmod.superseded_retention. With an idempotency_key, a retry of the same request returns the first call''s version and registers nothing.';

CREATE FUNCTION imgmod.inspect(data bytea)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'imgmod_inspect'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION imgmod.inspect(bytea) IS
  'Runs the upload checks without storing anything: returns format, width, height, frames, orientation, colour model, ICC, which metadata is present, and the verdict (accept or reject) with its reason and SQLSTATE.';

-- Edits never compound loss: a new edit is applied to the oldest master
-- its chain still has (an upload's, a replace's), with every edit's ops
-- since then replayed in one go, so the picture is decoded and encoded
-- once however many edits came before.
CREATE FUNCTION imgmod._edit_source(p_image bigint, p_base integer, p_new_ops integer,
                                    OUT source_version integer, OUT inherited_ops jsonb,
                                    OUT width integer, OUT height integer,
                                    OUT focus_x double precision, OUT focus_y double precision,
                                    OUT master_sha256 text, OUT hires_key text, OUT hires_bytes integer,
                                    OUT has_staged boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v_cur integer := p_base;
    v_acc jsonb := '[]';
    v_row record;
    v_budget constant integer := 64;   -- IMG_EDIT_MAX_OPS: the longest list the core applies at once
BEGIN
    LOOP
        SELECT v.origin, v.base_version, v.ops, v.status, v.master_sha256 AS sha, v.width AS w, v.height AS h,
               v.focus_x AS fx, v.focus_y AS fy, v.hires_key AS hk, v.hires_bytes AS hb, v.staged IS NOT NULL AS st
          INTO v_row
          FROM imgmod.image_versions v WHERE v.image_id = p_image AND v.version = v_cur;
        EXIT WHEN NOT FOUND;
        -- a version whose master exists can be the source
        IF v_row.status <> 'purged' AND v_row.sha IS NOT NULL AND jsonb_array_length(v_acc) + p_new_ops <= v_budget - 1 THEN
            source_version := v_cur; inherited_ops := v_acc; width := v_row.w; height := v_row.h;
            focus_x := v_row.fx; focus_y := v_row.fy; master_sha256 := v_row.sha; hires_key := v_row.hk;
            hires_bytes := v_row.hb; has_staged := v_row.st;
        END IF;
        IF v_row.origin = 'edit' THEN
            v_acc := v_row.ops || v_acc;
            v_cur := v_row.base_version;
        ELSIF v_row.origin = 'revert' THEN
            v_cur := v_row.base_version;   -- the same bytes as its base's master
        ELSE
            EXIT;
        END IF;
        EXIT WHEN jsonb_array_length(v_acc) + p_new_ops > v_budget - 1;
    END LOOP;
END
$$;
COMMENT ON FUNCTION imgmod._edit_source(bigint, integer, integer) IS
  'Internal: what an edit of version p_base (adding p_new_ops ops) is made from: the oldest version up its chain of edits and reverts whose master still exists, and the ops of every edit since (applied before the new ones), within the 64 ops the core applies at once. NULL source_version: no master in the chain (an edit whose chain is all purged or not made).';

CREATE FUNCTION imgmod.edit(image_id bigint, ops jsonb, base_version integer DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'imgmod_edit'
LANGUAGE C VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION imgmod.edit(bigint, jsonb, integer) IS
  'Makes a new version of an image by applying ops (a JSON array, at most 16, applied in order in the upright pixels of base_version, default the newest version) to that version''s full-resolution master: {"op":"rotate","degrees":90|180|270} (clockwise), {"op":"flip","axis":"horizontal"|"vertical"}, {"op":"crop","x":..,"y":..,"width":..,"height":..} in pixels or with "unit":"ratio" (0-1 fractions), {"op":"pad","aspect":"1:1","background":"#ffffff"}, {"op":"focus","x":..,"y":..} (the point cover presets crop around; pixels or "unit":"ratio"). Everything is checked in the call (invalid_parameter_value naming the op''s index and the reason); a worker does the pixel work after COMMIT, on the DCT coefficients when the JPEG allows it. Returns the new version number; it becomes current when ready, like a replace.';

CREATE FUNCTION imgmod.revert(image_id bigint, version integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'imgmod_revert'
LANGUAGE C VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION imgmod.revert(bigint, integer) IS
  'Undo: makes a new version whose full-resolution master is the given older version''s, byte for byte (no pixel work, no re-encode), with its focal point; returns the new version number. The version must not be purged yet (imgmod.superseded_retention).';

CREATE FUNCTION imgmod.fetch(image_id bigint, preset text, version integer DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'imgmod_fetch'
LANGUAGE C STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION imgmod.fetch(bigint, text, integer) IS
  'Returns the JPEG bytes of a variant from the main store: the current version unless a version is given. What a CDN origin asks for. preset ''master'' returns the compressed master (main store), ''original'' the full-resolution master (hi-res store).';

CREATE FUNCTION imgmod.wake_workers()
RETURNS integer
AS 'MODULE_PATHNAME', 'imgmod_wake_workers'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION imgmod.wake_workers() IS
  'Wakes every imgmod worker when the current transaction commits (never if it aborts); returns how many workers are running. upload() and retry() call it.';

CREATE FUNCTION imgmod.rejection_counters(OUT reason text, OUT sqlstate text, OUT total bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'imgmod_rejection_counters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION imgmod.rejection_counters() IS
  'Rejections counted in shared memory since the server started, by reason; counted even when the audit queue overflowed.';

CREATE FUNCTION imgmod.audit_queue(OUT queued integer, OUT capacity integer, OUT dropped bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'imgmod_audit_queue'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION imgmod.audit_queue() IS
  'State of the shared-memory queue that carries audit rows to imgmod.rejections: entries waiting, capacity, and entries dropped because it was full.';

-- ------------------------------------------------------------------ SQL API

CREATE FUNCTION imgmod.wait(image_id bigint, timeout interval DEFAULT '30 s')
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v_deadline timestamptz := clock_timestamp() + timeout;
    v_status text;
    v_xmin xid;
BEGIN
    SELECT i.status, i.xmin INTO v_status, v_xmin FROM imgmod.images i WHERE i.id = wait.image_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'imgmod: image % does not exist', wait.image_id
              USING ERRCODE = 'no_data_found';
    END IF;
    IF v_status IN ('ready', 'failed', 'dead', 'deleted') THEN
        RETURN v_status;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'imgmod.wait() needs READ COMMITTED isolation'
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'A REPEATABLE READ or SERIALIZABLE snapshot never sees the worker''s progress; call imgmod.wait() in its own transaction.';
    END IF;
    IF v_xmin::text = (pg_current_xact_id_if_assigned()::text::numeric % 4294967296)::text THEN
        RAISE EXCEPTION 'imgmod.wait() cannot wait for image % uploaded in the same transaction', wait.image_id
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'Workers start after COMMIT: commit the upload, then wait.';
    END IF;
    LOOP
        SELECT i.status INTO v_status FROM imgmod.images i WHERE i.id = wait.image_id;
        IF v_status IN ('ready', 'failed', 'dead', 'deleted') OR v_status IS NULL THEN
            RETURN coalesce(v_status, 'deleted');
        END IF;
        IF clock_timestamp() >= v_deadline THEN
            RETURN v_status;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
COMMENT ON FUNCTION imgmod.wait(bigint, interval) IS
  'Blocks until the image is ready, failed, dead or deleted, or the timeout passes; returns the status then. Must run in READ COMMITTED and after the upload committed.';

CREATE FUNCTION imgmod.delete(image_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v_status text;
    v_count integer := 0;
    v_version integer;
BEGIN
    SELECT i.status INTO v_status FROM imgmod.images i WHERE i.id = delete.image_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'imgmod: image % does not exist', delete.image_id
              USING ERRCODE = 'no_data_found';
    END IF;
    IF v_status = 'deleted' THEN
        RETURN 0;
    END IF;
    -- Work not started yet is cancelled; a render already running finds the
    -- image deleted when it registers, and supersedes its own version.
    UPDATE imgmod.jobs j SET state = 'done', finished_at = now(), claimed_by = NULL,
           last_error = 'cancelled: the image was deleted'
     WHERE j.image_id = delete.image_id AND j.kind = 'render' AND j.state IN ('queued', 'dead');
    UPDATE imgmod.images i SET status = 'deleted', current_version = NULL, updated_at = now()
     WHERE i.id = delete.image_id;
    PERFORM imgmod._emit(delete.image_id, NULL, 'deleted', 'purge', NULL, NULL);
    -- Every version goes now, not after imgmod.superseded_retention: a
    -- deletion (a withdrawn product, a takedown) means gone.
    FOR v_version IN SELECT v.version FROM imgmod.image_versions v
                      WHERE v.image_id = delete.image_id ORDER BY v.version
    LOOP
        IF imgmod._supersede(delete.image_id, v_version, interval '0') THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    -- Versions superseded earlier and still waiting for their retention go
    -- now too, and purges that had given up get a fresh set of attempts.
    UPDATE imgmod.jobs j SET next_attempt_at = now(), state = 'queued', attempts = 0, finished_at = NULL
     WHERE j.image_id = delete.image_id AND j.kind = 'purge' AND j.state IN ('queued', 'dead');
    PERFORM imgmod.wake_workers();
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION imgmod.delete(bigint) IS
  'Deletes an image in the caller''s transaction: status deleted, nothing served any more, queued renders cancelled; after COMMIT the workers delete every version''s objects from both stores, its Redis keys and variant rows (purge jobs, retried until done). Returns how many versions were newly scheduled for purging; the image and version rows stay as history.';

CREATE FUNCTION imgmod.retry(image_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v_count integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM imgmod.images i WHERE i.id = retry.image_id) THEN
        RAISE EXCEPTION 'imgmod: image % does not exist', retry.image_id
              USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE imgmod.jobs j
       SET state = 'queued', attempts = 0, next_attempt_at = now(),
           claimed_by = NULL, claimed_at = NULL, finished_at = NULL
     WHERE j.image_id = retry.image_id
       AND (j.state = 'dead' OR (j.state = 'queued' AND j.attempts > 0));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        UPDATE imgmod.images i SET status = 'received', updated_at = now()
         WHERE i.id = retry.image_id AND i.status IN ('failed', 'dead');
        PERFORM imgmod._emit(retry.image_id, NULL, 'retried', 'render', NULL, NULL);
        PERFORM imgmod.wake_workers();
    END IF;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION imgmod.retry(bigint) IS
  'Re-queues the image''s failed or dead jobs now, with their attempt count reset; returns how many jobs were re-queued (0 when nothing had failed).';

-- -------------------------------------------------------------------- views

CREATE VIEW imgmod.queue AS
SELECT j.id AS job_id, j.image_id, j.version, j.kind, j.state, j.attempts,
       j.next_attempt_at, j.claimed_by, j.claimed_at, j.last_error, j.created_at,
       now() - j.created_at AS age,
       CASE
         WHEN j.state = 'dead' THEN 'gave up after ' || j.attempts || ' attempts: ' || coalesce(j.last_error, '?')
         WHEN j.state = 'running' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                                   WHERE a.pid = j.claimed_by AND a.backend_start = j.claimed_by_start
                                                     AND a.backend_type = 'imgmod worker')
           THEN 'its worker is gone; the job will be reclaimed'
         WHEN j.state = 'running' THEN 'running for ' || (now() - j.claimed_at)
         WHEN j.attempts > 0 THEN 'retrying at ' || j.next_attempt_at || ' after: ' || coalesce(j.last_error, '?')
         WHEN j.kind = 'purge' AND j.next_attempt_at > now()
           THEN 'purge due at ' || j.next_attempt_at || ': superseded versions are kept for imgmod.superseded_retention'
         WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.backend_type = 'imgmod worker')
           THEN 'no imgmod worker is running: is imgmod in shared_preload_libraries and imgmod.database this database?'
         ELSE 'waiting for a worker'
       END AS why
  FROM imgmod.jobs j
 WHERE j.state <> 'done';
COMMENT ON VIEW imgmod.queue IS 'Unfinished work and why it is not finished yet: what is stuck and why.';

CREATE VIEW imgmod.status_counts AS
SELECT s.status, count(i.id) AS images
  FROM unnest(ARRAY['received', 'processing', 'ready', 'failed', 'dead', 'deleted']) AS s(status)
  LEFT JOIN imgmod.images i ON i.status = s.status
 GROUP BY s.status;
COMMENT ON VIEW imgmod.status_counts IS 'Number of images in each status.';

CREATE FUNCTION imgmod.store_counters(OUT store text, OUT backend text, OUT verb text,
                                      OUT requests bigint, OUT failures bigint, OUT retries bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'imgmod_store_counters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION imgmod.store_counters() IS
  'Object-store requests since server start, counted in shared memory by store (main, hires) and verb; requests include retried attempts.';

CREATE VIEW imgmod.stats AS
SELECT store, backend, verb, requests, failures, retries FROM imgmod.store_counters();
COMMENT ON VIEW imgmod.stats IS 'Object-store requests by store and verb since server start: rendering issues PUTs only (one per object); GETs come from imgmod.fetch() and re-renders after staging was cleared; DELETEs from purges of superseded versions (one per object).';

CREATE FUNCTION imgmod.cache_counters(OUT counter text, OUT total bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'imgmod_cache_counters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION imgmod.cache_counters() IS
  'Redis operations since server start: keys written, hits, misses, keys of superseded versions deleted, and writes/reads/deletes skipped because Redis was down or slow.';

CREATE VIEW imgmod.cache_stats AS
SELECT counter, total FROM imgmod.cache_counters();
COMMENT ON VIEW imgmod.cache_stats IS 'Redis cache activity since server start; skipped_* count operations dropped while Redis was unavailable (the pipeline carries on without it).';

CREATE VIEW imgmod.rejection_stats AS
SELECT * FROM imgmod.rejection_counters();
COMMENT ON VIEW imgmod.rejection_stats IS 'Rejections by reason since server start, counted in shared memory (visible even when audit rows could not be queued).';

-- ---------------------------------------------------------------------- CDN

CREATE TABLE imgmod.cdn_nodes (
    node                text NOT NULL CHECK (node ~ '^[A-Za-z0-9._:-]{1,128}$'),
    tier                text NOT NULL CHECK (tier IN ('origin-memory', 'edge')),
    capacity_bytes      bigint NOT NULL CHECK (capacity_bytes >= 0),
    used_bytes          bigint NOT NULL CHECK (used_bytes >= 0),
    items               bigint NOT NULL CHECK (items >= 0),
    hits                bigint NOT NULL CHECK (hits >= 0),
    misses              bigint NOT NULL CHECK (misses >= 0),
    evictions           bigint NOT NULL CHECK (evictions >= 0),
    previous_evictions  bigint,
    report_interval     interval NOT NULL CHECK (report_interval > interval '0'),
    first_reported_at   timestamptz NOT NULL DEFAULT now(),
    reported_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, tier)
);
COMMENT ON TABLE imgmod.cdn_nodes IS 'The caches of the CDN as they last reported themselves through imgmod.cdn_report(): one row per node and tier. Read it through imgmod.cdn_capacity.';
COMMENT ON COLUMN imgmod.cdn_nodes.node IS 'Name the node reports under (host name, or host:port).';
COMMENT ON COLUMN imgmod.cdn_nodes.tier IS 'origin-memory: imgmod-origin''s in-memory cache; edge: a Varnish edge in front of it.';
COMMENT ON COLUMN imgmod.cdn_nodes.capacity_bytes IS 'Bytes the cache may hold.';
COMMENT ON COLUMN imgmod.cdn_nodes.used_bytes IS 'Bytes it holds now.';
COMMENT ON COLUMN imgmod.cdn_nodes.items IS 'Objects it holds now.';
COMMENT ON COLUMN imgmod.cdn_nodes.hits IS 'Requests answered from this cache since the node started.';
COMMENT ON COLUMN imgmod.cdn_nodes.misses IS 'Requests this cache could not answer since the node started.';
COMMENT ON COLUMN imgmod.cdn_nodes.evictions IS 'Objects dropped to make room since the node started.';
COMMENT ON COLUMN imgmod.cdn_nodes.previous_evictions IS 'evictions at the report before this one: more now means the cache is full and evicting.';
COMMENT ON COLUMN imgmod.cdn_nodes.report_interval IS 'How often the node reports; three intervals without a report make it stale.';
COMMENT ON COLUMN imgmod.cdn_nodes.first_reported_at IS 'When the node first reported.';
COMMENT ON COLUMN imgmod.cdn_nodes.reported_at IS 'When it last reported.';

CREATE FUNCTION imgmod.cdn_report(node text, tier text, capacity_bytes bigint, used_bytes bigint,
                                  items bigint, hits bigint, misses bigint, evictions bigint,
                                  report_interval interval DEFAULT '5 s')
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF least(capacity_bytes, used_bytes, items, hits, misses, evictions) < 0 THEN
        RAISE EXCEPTION 'imgmod.cdn_report: counters are never negative'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO imgmod.cdn_nodes AS n (node, tier, capacity_bytes, used_bytes, items, hits, misses,
                                       evictions, report_interval)
    VALUES (cdn_report.node, cdn_report.tier, cdn_report.capacity_bytes, cdn_report.used_bytes,
            cdn_report.items, cdn_report.hits, cdn_report.misses, cdn_report.evictions,
            cdn_report.report_interval)
    ON CONFLICT ON CONSTRAINT cdn_nodes_pkey DO UPDATE
       SET capacity_bytes = EXCLUDED.capacity_bytes, used_bytes = EXCLUDED.used_bytes,
           items = EXCLUDED.items, hits = EXCLUDED.hits, misses = EXCLUDED.misses,
           -- a restarted node counts from zero again: that is no eviction
           previous_evictions = CASE WHEN EXCLUDED.evictions >= n.evictions THEN n.evictions ELSE 0 END,
           evictions = EXCLUDED.evictions, report_interval = EXCLUDED.report_interval,
           reported_at = now();
END
$$;
COMMENT ON FUNCTION imgmod.cdn_report(text, text, bigint, bigint, bigint, bigint, bigint, bigint, interval) IS
  'Called by a CDN node every few seconds and when it stops: records its cache''s capacity, use and counters in imgmod.cdn_nodes. Granted to imgmod_cdn.';

CREATE VIEW imgmod.cdn_capacity AS
SELECT n.node, n.tier, n.capacity_bytes, n.used_bytes,
       round(n.used_bytes::numeric / nullif(n.capacity_bytes, 0), 3) AS used_ratio,
       n.items, n.hits, n.misses,
       round(n.hits::numeric / nullif(n.hits + n.misses, 0), 3) AS hit_ratio,
       n.evictions, n.reported_at,
       CASE
         WHEN n.reported_at < now() - 3 * n.report_interval THEN 'stale'
         WHEN n.evictions > n.previous_evictions THEN 'full'
         WHEN n.used_bytes >= n.capacity_bytes
                              * coalesce(nullif(current_setting('imgmod.cdn_capacity_warn', true), '')::float8, 0.9)
           THEN 'warn'
         ELSE 'ok'
       END AS state
  FROM imgmod.cdn_nodes n;
COMMENT ON VIEW imgmod.cdn_capacity IS 'Every CDN cache and how full it is: used_ratio, hit_ratio and state: ok, warn (used at or above imgmod.cdn_capacity_warn of capacity), full (evicting: evictions rose since the previous report) or stale (no report for three intervals: the node is down or cut off).';

CREATE VIEW imgmod.storage_usage AS
SELECT 'main'::text AS store, 'variant'::text AS kind, v.preset, count(*) AS objects, sum(v.bytes)::bigint AS bytes
  FROM imgmod.variants v GROUP BY v.preset
UNION ALL
SELECT 'main', 'compressed master', NULL, count(*), coalesce(sum(iv.master_bytes), 0)::bigint
  FROM imgmod.image_versions iv WHERE iv.master_key IS NOT NULL AND iv.status <> 'purged'
UNION ALL
SELECT 'hires', 'original', NULL, count(*), coalesce(sum(iv.hires_bytes), 0)::bigint
  FROM imgmod.image_versions iv WHERE iv.hires_key IS NOT NULL AND iv.status <> 'purged';
COMMENT ON VIEW imgmod.storage_usage IS 'Objects and bytes in the stores, from the tables: variants per preset and compressed masters in the main store, full-resolution originals in the hi-res store (versions not purged yet). With imgmod.cdn_capacity: how much there is to hold, and how much the CDN holds.';

CREATE FUNCTION imgmod.url(image_id bigint, preset text, versioned boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v_base text := rtrim(coalesce(current_setting('imgmod.cdn_base_url', true), ''), '/');
    v_status text;
    v_version integer;
BEGIN
    IF v_base = '' THEN
        RAISE EXCEPTION 'imgmod.url: imgmod.cdn_base_url is not set'
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    HINT = 'An administrator sets it, e.g. ALTER DATABASE shop SET imgmod.cdn_base_url = ''https://img.example.com''.';
    END IF;
    SELECT i.status, i.current_version INTO v_status, v_version FROM imgmod.images i WHERE i.id = url.image_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'imgmod.url: image % does not exist', url.image_id USING ERRCODE = 'no_data_found';
    ELSIF v_status = 'deleted' THEN
        RAISE EXCEPTION 'imgmod.url: image % was deleted', url.image_id USING ERRCODE = 'no_data_found';
    ELSIF v_version IS NULL THEN
        RAISE EXCEPTION 'imgmod.url: image % has no ready version yet (status %)', url.image_id, v_status
              USING ERRCODE = 'no_data_found', HINT = format('Wait for it with SELECT imgmod.wait(%s).', url.image_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM imgmod.variants v
                    WHERE v.image_id = url.image_id AND v.version = v_version AND v.preset = url.preset) THEN
        RAISE EXCEPTION 'imgmod.url: image % has no variant "%" in its current version', url.image_id, url.preset
              USING ERRCODE = 'no_data_found',
                    HINT = format('SELECT preset FROM imgmod.variants WHERE image_id = %s AND version = %s lists them.',
                                  url.image_id, v_version);
    END IF;
    RETURN v_base || '/i/' || url.image_id
           || CASE WHEN url.versioned THEN '/v' || v_version ELSE '' END
           || '/' || url.preset || '.jpg';
END
$$;
COMMENT ON FUNCTION imgmod.url(bigint, text, boolean) IS
  'URL of a variant of the current version under imgmod.cdn_base_url: versioned (default) is the immutable /i/{id}/v{version}/{preset}.jpg, cacheable for a year; otherwise /i/{id}/{preset}.jpg, which follows the current version.';

CREATE FUNCTION imgmod.srcset(image_id bigint)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS
$$
    SELECT string_agg(imgmod.url(i.id, v.preset) || ' ' || v.width || 'w', ', ' ORDER BY v.width, v.preset)
      FROM imgmod.images i
      JOIN imgmod.variants v ON v.image_id = i.id AND v.version = i.current_version
      -- the same picture at other widths: a cover or pad preset crops or
      -- letterboxes it, and a browser may pick any candidate
      JOIN imgmod.presets p ON p.name = v.preset AND p.width IS NOT NULL AND p.fit = 'contain'
     WHERE i.id = srcset.image_id
$$;
COMMENT ON FUNCTION imgmod.srcset(bigint) IS
  'The srcset attribute of an <img> for the current version: the versioned URL and width of every variant whose preset has a width and fit contain ("url 512w, url 1024w, ..."; cover and pad presets crop or letterbox the picture, so a browser must not pick them for it); NULL when the image has none.';

CREATE FUNCTION imgmod.history(image_id bigint)
RETURNS TABLE (version integer, status text, current boolean, origin text, base_version integer,
               ops jsonb, master_method text, width integer, height integer,
               focus_x double precision, focus_y double precision,
               created_at timestamptz, stored_at timestamptz, superseded_at timestamptz, purged_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS
$$
    SELECT v.version, v.status, v.version = i.current_version, v.origin, v.base_version, v.ops,
           v.master_method, v.width, v.height, v.focus_x, v.focus_y,
           v.created_at, v.stored_at, v.superseded_at, v.purged_at
      FROM imgmod.image_versions v
      JOIN imgmod.images i ON i.id = v.image_id
     WHERE v.image_id = history.image_id
     ORDER BY v.version
$$;
COMMENT ON FUNCTION imgmod.history(bigint) IS
  'Every version of an image, oldest first, with what made it: origin upload, replace, edit (base_version and the ops) or revert (base_version), how its master was made (lossless or reencoded), its size and focal point, its status and whether it is the current one.';

-- ------------------------------------------------------------- CDN edges

-- Surrogate keys: imgmod-origin tags each response with keys (its xkey
-- header), and a change purges exactly the keys whose responses it makes
-- wrong.  The two must agree; origin/route.h formats the same keys.
CREATE FUNCTION imgmod.cdn_purge_keys(image_id bigint, version integer, status text)
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE cdn_purge_keys.status
             -- a version became current: the unversioned URLs, and any 404
             -- an edge cached for the new version's URLs before it was ready
             WHEN 'ready' THEN array_remove(ARRAY['imgmod-image-' || cdn_purge_keys.image_id,
                                                  'imgmod-image-' || cdn_purge_keys.image_id || '-v' || cdn_purge_keys.version], NULL)
             -- a superseded version's objects were deleted: its immutable URLs
             WHEN 'purged' THEN array_remove(ARRAY['imgmod-image-' || cdn_purge_keys.image_id || '-v' || cdn_purge_keys.version], NULL)
             -- every URL of the image
             WHEN 'deleted' THEN ARRAY['imgmod-image-' || cdn_purge_keys.image_id || '-all']
           END
$$;
COMMENT ON FUNCTION imgmod.cdn_purge_keys(bigint, integer, text) IS
  'The surrogate keys an event makes stale at a CDN edge: ready (a version became current) purges imgmod-image-{id} (every unversioned URL) and imgmod-image-{id}-v{n}; purged (a superseded version''s objects were deleted) purges imgmod-image-{id}-v{n}; deleted purges imgmod-image-{id}-all (every URL). NULL for events that change nothing served.';

CREATE TABLE imgmod.cdn_edges (
    purge_url            text PRIMARY KEY,
    cursor_txid          xid8 NOT NULL,
    cursor_event         bigint NOT NULL,
    purges_sent          bigint NOT NULL DEFAULT 0,
    purges_acknowledged  bigint NOT NULL DEFAULT 0,
    purges_retried       bigint NOT NULL DEFAULT 0,
    purges_repeated      bigint NOT NULL DEFAULT 0,
    events_delivered     bigint NOT NULL DEFAULT 0,
    failures_in_row      integer NOT NULL DEFAULT 0,
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    last_error           text,
    last_acknowledged_at timestamptz,
    added_at             timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE imgmod.cdn_edges IS 'The edge purger''s durable state, one row per URL in imgmod.cdn_purge_urls (rows come and go with the setting): how far through imgmod.events each edge has acknowledged purges, and its counters. Read it through imgmod.cdn_purge_status.';
COMMENT ON COLUMN imgmod.cdn_edges.purge_url IS 'Where purges are sent (HTTP method PURGE, header xkey-purge).';
COMMENT ON COLUMN imgmod.cdn_edges.cursor_txid IS 'With cursor_event: the last event, in (txid, id) order, whose purge this edge acknowledged (or that needed none).';
COMMENT ON COLUMN imgmod.cdn_edges.cursor_event IS 'See cursor_txid.';
COMMENT ON COLUMN imgmod.cdn_edges.purges_sent IS 'Purge requests sent, first attempts and retries.';
COMMENT ON COLUMN imgmod.cdn_edges.purges_acknowledged IS 'Purge requests the edge answered with 200.';
COMMENT ON COLUMN imgmod.cdn_edges.purges_retried IS 'Purge requests sent again after a failure.';
COMMENT ON COLUMN imgmod.cdn_edges.purges_repeated IS 'Acknowledged purges sent once more half a second later, in case the edge fetched the changed image from an origin that had not yet dropped its old entry (see bgworker/edge_purger.c). Equal to acknowledged once every repeat went out.';
COMMENT ON COLUMN imgmod.cdn_edges.events_delivered IS 'Events whose purge the edge acknowledged.';
COMMENT ON COLUMN imgmod.cdn_edges.failures_in_row IS 'Failed attempts since the last acknowledgement; the backoff grows with it.';
COMMENT ON COLUMN imgmod.cdn_edges.next_attempt_at IS 'Not before this is the next attempt made (backoff after a failure).';
COMMENT ON COLUMN imgmod.cdn_edges.last_error IS 'Why the last attempt failed; NULL after an acknowledgement.';
COMMENT ON COLUMN imgmod.cdn_edges.last_acknowledged_at IS 'When the edge last acknowledged a purge.';
COMMENT ON COLUMN imgmod.cdn_edges.added_at IS 'When the URL was first configured; events from transactions already finished then are not its business (its cache did not hold their images'' bytes through imgmod yet).';

CREATE VIEW imgmod.cdn_purge_status AS
SELECT c.purge_url,
       c.purges_sent AS sent,
       c.purges_acknowledged AS acknowledged,
       c.purges_retried AS retried,
       c.purges_repeated AS repeated,
       coalesce(p.pending, 0) AS pending,
       now() - p.oldest AS oldest_pending_age,
       c.events_delivered,
       c.failures_in_row,
       c.last_error,
       CASE WHEN c.failures_in_row > 0 THEN c.next_attempt_at END AS next_attempt_at,
       c.last_acknowledged_at
  FROM imgmod.cdn_edges c
  LEFT JOIN LATERAL (
        SELECT count(*) AS pending, min(e.created_at) AS oldest
          FROM imgmod.events e
         WHERE (e.txid, e.id) > (c.cursor_txid, c.cursor_event)
           AND e.status IN ('ready', 'purged', 'deleted')) p ON true;
COMMENT ON VIEW imgmod.cdn_purge_status IS 'Every CDN edge purges are sent to (imgmod.cdn_purge_urls) and how delivery goes: sent, acknowledged and retried requests, repeated ones (each acknowledged purge is sent once more 0.5 s later), pending events (changes the edge has not acknowledged yet) and the age of the oldest, the failures in a row and the last error. pending > 0 with an old oldest_pending_age means the edge may serve stale bytes: see last_error.';

CREATE FUNCTION imgmod.cdn_report_varnish(node text, stats jsonb, report_interval interval DEFAULT '5 s')
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    v_counters jsonb;
    v_storage jsonb;
    v_capacity bigint;
    v_used bigint;
BEGIN
    IF stats IS NULL OR jsonb_typeof(stats) <> 'object' THEN
        RAISE EXCEPTION 'imgmod.cdn_report_varnish: stats must be the JSON object varnishstat -j prints'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- varnishstat 6.5+ nests the counters under "counters"; older ones do not
    v_counters := coalesce(stats->'counters', stats);
    IF jsonb_typeof(v_counters) <> 'object' OR NOT v_counters ? 'MAIN.n_object' THEN
        RAISE EXCEPTION 'imgmod.cdn_report_varnish: no MAIN.n_object counter: this is not the output of varnishstat -j'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The cache's capacity is its malloc/file storages (SMA.*, SMF.*), not
    -- Transient, which holds short-lived and uncacheable objects.
    SELECT sum((c.value->>'value')::numeric) FILTER (WHERE c.key ~ '\.g_bytes$'),
           sum((c.value->>'value')::numeric) FILTER (WHERE c.key ~ '\.g_space$')
      INTO v_used, v_capacity
      FROM jsonb_each(v_counters) c
     WHERE c.key ~ '^SM[AF]\.' AND c.key !~ '^SM[AF]\.Transient\.'
       AND jsonb_typeof(c.value->'value') = 'number';
    IF v_used IS NULL OR v_capacity IS NULL THEN
        RAISE EXCEPTION 'imgmod.cdn_report_varnish: no storage counters (SMA.<name>.g_bytes and g_space)'
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Start varnishd with a malloc or file storage, e.g. -s imgmod=malloc,256m.';
    END IF;
    PERFORM imgmod.cdn_report(node, 'edge', v_capacity + v_used, v_used,
                              (v_counters#>>'{MAIN.n_object,value}')::bigint,
                              coalesce((v_counters#>>'{MAIN.cache_hit,value}')::bigint, 0),
                              coalesce((v_counters#>>'{MAIN.cache_miss,value}')::bigint, 0),
                              coalesce((v_counters#>>'{MAIN.n_lru_nuked,value}')::bigint, 0),
                              report_interval);
END
$$;
COMMENT ON FUNCTION imgmod.cdn_report_varnish(text, jsonb, interval) IS
  'Called beside a Varnish edge every few seconds with the output of varnishstat -j: records it in imgmod.cdn_nodes as tier edge (capacity = storage bytes used + free, items = MAIN.n_object, hits, misses, evictions = MAIN.n_lru_nuked). Granted to imgmod_cdn.';

-- ---------------------------------------------------------- retry topic

CREATE FUNCTION imgmod.retry_request_counters(OUT outcome text, OUT total bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'imgmod_retry_request_counters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION imgmod.retry_request_counters() IS
  'Messages read from the Kafka retry topic since server start, by outcome: requeued, nothing_to_retry, unknown_image, unknown_version, failed (read again), or the reason a message was refused (malformed, wrong_type, not_positive, overflow, missing_image_id, unknown_field, duplicate_field, too_large).';
REVOKE ALL ON FUNCTION imgmod.retry_request_counters() FROM PUBLIC;

CREATE VIEW imgmod.retry_request_stats AS
SELECT outcome, total FROM imgmod.retry_request_counters();
COMMENT ON VIEW imgmod.retry_request_stats IS 'Retry requests from the Kafka retry topic since server start, by outcome; a refused message is counted under its reason and never retries any image.';
REVOKE ALL ON imgmod.retry_request_stats FROM PUBLIC;

CREATE FUNCTION imgmod.render_counters(OUT threads integer, OUT renders bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'imgmod_render_counters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION imgmod.render_counters() IS
  'Renders finished by the workers since server start, by the most threads one of their steps ran on (1 to 8): imgmod.render_threads, lowered to the CPU cores idle at each step.';

CREATE VIEW imgmod.render_stats AS
SELECT threads, renders FROM imgmod.render_counters();
COMMENT ON VIEW imgmod.render_stats IS 'Renders since server start by how many threads they used at most: on a busy machine every render keeps to its worker''s thread; a render that found idle cores split its decode, resizes and encodes between them (imgmod.render_threads).';

-- ------------------------------------------------------------------ backups

-- pg_dump dumps the rows of an extension's tables only when they are
-- registered here.  The installation row is left out on purpose: a restored
-- database gets a new installation id, so it never reads Redis entries
-- written under the old one (and every cached byte is checked against the
-- digests below anyway).  Of the presets, only what differs from the rows
-- this script seeds: CREATE EXTENSION during the restore seeds those again.
SELECT pg_catalog.pg_extension_config_dump('imgmod.images', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.images_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.image_versions', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.variants', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.events', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.rejections', '');
-- A client retrying across a restore must still get its first result.
SELECT pg_catalog.pg_extension_config_dump('imgmod.idempotency_keys', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.rejections_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('imgmod.presets',
  'WHERE NOT imgmod._is_seeded_preset(name, width, height, fit, quality, allow_upscale)');

-- --------------------------------------------------------------- privileges

-- Two group roles, shared by every database of the cluster (roles are
-- global) and kept when the extension is dropped: logins are granted to
-- them, so nobody needs superuser after CREATE EXTENSION.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'imgmod_app') THEN
        CREATE ROLE imgmod_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'imgmod_admin') THEN
        CREATE ROLE imgmod_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'imgmod_cdn') THEN
        CREATE ROLE imgmod_cdn NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('imgmod_admin', 'imgmod_app', 'MEMBER') THEN
        GRANT imgmod_app TO imgmod_admin;
    END IF;
END
$$;
COMMENT ON ROLE imgmod_app IS 'imgmod: what application code needs: upload, replace, inspect, fetch, wait, and reading images, image_versions, variants, presets and events. Grant it to the application''s login role.';
COMMENT ON ROLE imgmod_cdn IS 'imgmod: the CDN origin: reads images, image_versions, variants, presets (and the installation id that names its Redis keys) and reports its cache through imgmod.cdn_report(). Grant it to imgmod-origin''s login role.';
COMMENT ON ROLE imgmod_admin IS 'imgmod: operators: everything imgmod_app may, plus delete, retry, wake_workers, changing presets, the queue, rejections and every statistics view.';

-- Nothing is usable by PUBLIC, whatever the defaults of this database are.
REVOKE ALL ON ALL TABLES IN SCHEMA imgmod FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA imgmod FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA imgmod FROM PUBLIC;
REVOKE ALL ON SCHEMA imgmod FROM PUBLIC;

GRANT USAGE ON SCHEMA imgmod TO imgmod_app, imgmod_cdn;

-- The application.  Writes happen only through the SECURITY DEFINER
-- functions: no role but the owner may INSERT into jobs or events (a queued
-- purge of someone else's image, or a forged event sent to Kafka).
GRANT EXECUTE ON FUNCTION imgmod.upload(bytea, text, text, text),
                          imgmod.replace(bigint, bytea, text, text, text),
                          imgmod.edit(bigint, jsonb, integer),
                          imgmod.revert(bigint, integer),
                          imgmod.history(bigint),
                          imgmod.inspect(bytea),
                          imgmod.fetch(bigint, text, integer),
                          imgmod.wait(bigint, interval),
                          imgmod.url(bigint, text, boolean),
                          imgmod.srcset(bigint)
      TO imgmod_app;
GRANT SELECT ON imgmod.images, imgmod.image_versions, imgmod.variants, imgmod.presets, imgmod.events
      TO imgmod_app;

-- Operators.
GRANT EXECUTE ON FUNCTION imgmod.delete(bigint),
                          imgmod.retry(bigint),
                          imgmod.wake_workers(),
                          imgmod.rejection_counters(),
                          imgmod.audit_queue(),
                          imgmod.store_counters(),
                          imgmod.cache_counters(),
                          imgmod.retry_request_counters(),
                          imgmod.render_counters()
      TO imgmod_admin;
GRANT INSERT, UPDATE, DELETE ON imgmod.presets TO imgmod_admin;
GRANT SELECT ON imgmod.jobs, imgmod.rejections, imgmod.installation, imgmod.idempotency_keys,
                imgmod.queue, imgmod.status_counts, imgmod.rejection_stats,
                imgmod.stats, imgmod.cache_stats, imgmod.retry_request_stats, imgmod.render_stats,
                imgmod.cdn_nodes, imgmod.cdn_capacity, imgmod.storage_usage,
                imgmod.cdn_edges, imgmod.cdn_purge_status
      TO imgmod_admin;
GRANT EXECUTE ON FUNCTION imgmod.cdn_purge_keys(bigint, integer, text) TO imgmod_admin;

-- The CDN origin.
GRANT SELECT ON imgmod.images, imgmod.image_versions, imgmod.variants, imgmod.presets, imgmod.installation
      TO imgmod_cdn;
GRANT EXECUTE ON FUNCTION imgmod.cdn_report(text, text, bigint, bigint, bigint, bigint, bigint, bigint, interval),
                          imgmod.cdn_report_varnish(text, jsonb, interval)
      TO imgmod_cdn;
