-- Web Push: the instance's VAPID key pair (one row, made at first start; every instance
-- on this database signs with it), each browser's subscription, and how each member
-- wants to be told (quiet hours in their time zone, message text in pushes or not).
CREATE TABLE push_keys (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- The P-256 private key as PKCS#8 DER, base64url.
    private_key TEXT NOT NULL,
    -- Its public key, an uncompressed point, base64url: the browsers' applicationServerKey.
    public_key TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- A browser that agreed to be pushed to, for the member signed in on it. One endpoint is
-- one browser profile: signing in there as someone else moves it to them.
CREATE TABLE push_subscriptions (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL,
    user_id UUID NOT NULL,
    endpoint TEXT NOT NULL,
    -- The browser's P-256 key and auth secret (base64url), which encrypt each payload.
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_pushed_at TIMESTAMPTZ,
    CONSTRAINT push_subscriptions_endpoint UNIQUE (endpoint),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX push_subscriptions_member_idx ON push_subscriptions (org_id, user_id);

-- No row: no quiet hours, no message text in pushes, the browser's time zone unknown (UTC).
CREATE TABLE notification_settings (
    org_id UUID NOT NULL,
    user_id UUID NOT NULL,
    time_zone TEXT NOT NULL,
    -- Minutes after midnight in time_zone; both NULL: no quiet hours. A range may wrap
    -- midnight (22:00 to 07:00).
    quiet_from INTEGER,
    quiet_until INTEGER,
    push_text BOOLEAN NOT NULL,
    CONSTRAINT notification_settings_pkey PRIMARY KEY (org_id, user_id),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
);

-- A notification the member keeps out of the bell (in-app off for its reason) still
-- exists for push and email; it is never listed nor counted.
ALTER TABLE notifications ADD COLUMN in_bell BOOLEAN NOT NULL DEFAULT TRUE;
