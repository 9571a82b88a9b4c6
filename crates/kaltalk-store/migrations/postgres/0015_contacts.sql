-- The Contacts section: a phone number on each contact, the notes the team keeps about a
-- contact, and the custom attributes an admin defines (the values stay in
-- contacts.attributes, checked against these definitions when written).

ALTER TABLE contacts ADD COLUMN phone TEXT;
-- The list pages by (created_at, id): an import gives thousands of contacts the same
-- created_at, and without id in the index each page sorted them all.
CREATE INDEX contacts_list_idx ON contacts (org_id, created_at, id);
DROP INDEX contacts_org_idx;

CREATE TABLE contact_notes (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Deleting a contact deletes what the team wrote about them.
    contact_id UUID NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    author_id UUID REFERENCES users (id) ON DELETE SET NULL,
    text TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX contact_notes_contact_idx ON contact_notes (contact_id, created_at);

CREATE TABLE contact_attribute_definitions (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'number', 'date', 'boolean', 'list')),
    -- A list's choices, as a JSON array of strings (empty for the other kinds).
    options JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX contact_attribute_definitions_key ON contact_attribute_definitions (org_id, key);

-- The contact list's search: name, email and phone (the conversation search keeps its own
-- index over name and email).
CREATE INDEX contacts_list_search_idx ON contacts USING GIN (to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, '')));
