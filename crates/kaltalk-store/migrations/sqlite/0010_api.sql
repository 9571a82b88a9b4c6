-- The public API: the first answer to each POST carrying an Idempotency-Key, so a
-- client retrying after a timeout gets that answer again instead of a second write.

CREATE TABLE idempotency_keys (
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    -- "POST /conversations/…": a key is scoped to one method and path.
    request TEXT NOT NULL,
    -- SHA-256 of the request body, hex: the same key with another body is refused.
    body_hash TEXT NOT NULL,
    -- NULL while the first request is still running.
    status INTEGER,
    content_type TEXT,
    response_body BLOB,
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, idempotency_key, request)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

