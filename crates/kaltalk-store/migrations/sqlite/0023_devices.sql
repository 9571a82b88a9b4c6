-- Native apps (the operator's own store-built app): an app signs in for a bearer token,
-- kept as a session of kind 'app' (hashed like a cookie's, expiring like one, revoked by
-- deleting it), and registers the one device it runs on for pushes through FCM or APNs.
-- A device row keeps only what the privacy policy lists: its platform, its push token,
-- its OS and app versions. Signing the app out (or revoking it in Profile, or a password
-- reset) deletes the session and so the device; leaving the organization deletes it too.
ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'browser' CHECK (kind IN ('browser', 'app'));

CREATE TABLE devices (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL,
    user_id BLOB NOT NULL,
    -- The app session on this device: one device per session.
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    platform TEXT NOT NULL CHECK (platform IN ('fcm', 'apns')),
    push_token TEXT NOT NULL,
    os_version TEXT NOT NULL,
    app_version TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_pushed_at TEXT,
    CONSTRAINT devices_push_token UNIQUE (push_token),
    CONSTRAINT devices_session UNIQUE (session_id),
    FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX devices_member_idx ON devices (org_id, user_id);
