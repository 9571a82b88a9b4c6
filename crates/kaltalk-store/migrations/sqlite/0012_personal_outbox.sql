-- A person's own account mail (address confirmation, password reset) belongs to no
-- organization: it used to be filed under their oldest membership, whose owners could
-- read a reset link in the outbox and take the account. Such rows move to the personal
-- outbox (org_id NULL), which only the operator reads (`kaltalk admin outbox`).
UPDATE outbound_emails SET org_id = NULL WHERE kind IN ('verify_email', 'password_reset');
CREATE INDEX outbound_emails_personal_idx ON outbound_emails (created_at) WHERE org_id IS NULL;
