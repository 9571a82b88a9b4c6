-- Signed outbound webhooks: the endpoints an organization registers, one delivery per
-- (endpoint, event) with the exact body sent, every attempt to deliver it, and the
-- dispatcher's place in the event log.

CREATE TABLE webhook_endpoints (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- Signs every delivery (HMAC-SHA256); shown to the organization's admins.
    secret TEXT NOT NULL,
    -- The subscribed event kinds as ",kind,kind,"; '' means every kind.
    events TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    -- Since when every attempt has failed (NULL after a success): 24 hours of that disables it.
    failing_since TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id);

CREATE TABLE webhook_deliveries (
    -- Sent as the KalTalk-Delivery header: the same on every attempt.
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    endpoint_id BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- NULL for test pings.
    event_id BLOB,
    event_kind TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Bumped by a replay, so the retry job of an earlier round knows it is stale.
    round INTEGER NOT NULL DEFAULT 0,
    first_attempt_at TEXT,
    last_attempt_at TEXT,
    next_attempt_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_event_key ON webhook_deliveries (endpoint_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id BLOB PRIMARY KEY,
    delivery_id BLOB NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempted_at TEXT NOT NULL,
    -- NULL when no response came (refused, timed out, connection failed).
    response_status INTEGER,
    latency_ms BIGINT NOT NULL,
    succeeded BOOLEAN NOT NULL,
    error TEXT
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, attempted_at);

-- The last event the dispatcher has fully handled (one row, name 'webhooks').
CREATE TABLE webhook_dispatch_cursor (
    name TEXT PRIMARY KEY,
    last_event_id BLOB NOT NULL
);
