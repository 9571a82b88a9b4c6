-- Business hours per inbox (kaltalk_core::hours::InboxHours as JSON: on/off, zone, weekly
-- schedule, holidays, the out-of-office text); NULL: never set, always open. And when a
-- conversation got its out-of-office reply, so it gets one only once.
ALTER TABLE inboxes ADD COLUMN business_hours JSONB;
ALTER TABLE conversations ADD COLUMN out_of_office_sent_at TIMESTAMPTZ;
