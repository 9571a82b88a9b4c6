-- The Contacts section: a phone number on each contact, the notes the team keeps about a
-- contact, and the custom attributes an admin defines (the values stay in
-- contacts.attributes, checked against these definitions when written).

ALTER TABLE contacts ADD COLUMN phone TEXT;
-- The list pages by (created_at, id): an import gives thousands of contacts the same
-- created_at, and without id in the index each page sorted them all.
CREATE INDEX contacts_list_idx ON contacts (org_id, created_at, id);
DROP INDEX contacts_org_idx;

CREATE TABLE contact_notes (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Deleting a contact deletes what the team wrote about them.
    contact_id BLOB NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    author_id BLOB REFERENCES users (id) ON DELETE SET NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX contact_notes_contact_idx ON contact_notes (contact_id, created_at);

CREATE TABLE contact_attribute_definitions (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'number', 'date', 'boolean', 'list')),
    -- A list's choices, as a JSON array of strings (empty for the other kinds).
    options TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX contact_attribute_definitions_key ON contact_attribute_definitions (org_id, key);

-- The contact list's search covers the phone number too: the index is rebuilt with it.
DROP TRIGGER contacts_fts_insert;
DROP TRIGGER contacts_fts_delete;
DROP TRIGGER contacts_fts_update;
DROP TABLE contacts_fts;
CREATE VIRTUAL TABLE contacts_fts USING fts5(name, email, phone, content = 'contacts', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO contacts_fts (rowid, name, email, phone) SELECT rowid, coalesce(name, ''), coalesce(email, ''), coalesce(phone, '') FROM contacts;
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, name, email, phone) VALUES (new.rowid, coalesce(new.name, ''), coalesce(new.email, ''), coalesce(new.phone, ''));
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, phone) VALUES ('delete', old.rowid, coalesce(old.name, ''), coalesce(old.email, ''), coalesce(old.phone, ''));
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, email, phone ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email, phone) VALUES ('delete', old.rowid, coalesce(old.name, ''), coalesce(old.email, ''), coalesce(old.phone, ''));
    INSERT INTO contacts_fts (rowid, name, email, phone) VALUES (new.rowid, coalesce(new.name, ''), coalesce(new.email, ''), coalesce(new.phone, ''));
END;
-- As in 0011: a deleted contact's words leave the file at once.
INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('secure-delete', 1);
