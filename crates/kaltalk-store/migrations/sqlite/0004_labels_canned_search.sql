-- Labels on conversations, canned responses, and full-text search over messages and
-- contacts (FTS5 tables kept in step by triggers).

CREATE TABLE conversation_labels (
    conversation_id BLOB NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT conversation_labels_pkey PRIMARY KEY (conversation_id, label)
);
CREATE INDEX conversation_labels_org_idx ON conversation_labels (org_id, label);

CREATE TABLE canned_responses (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    shortcut TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT canned_responses_shortcut_key UNIQUE (org_id, shortcut)
);

CREATE VIRTUAL TABLE messages_fts USING fts5(text, content = 'messages', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO messages_fts (rowid, text) SELECT rowid, text FROM messages;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
END;

CREATE VIRTUAL TABLE contacts_fts USING fts5(name, email, content = 'contacts', content_rowid = 'rowid', tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO contacts_fts (rowid, name, email) SELECT rowid, coalesce(name, ''), coalesce(email, '') FROM contacts;
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, name, email) VALUES (new.rowid, coalesce(new.name, ''), coalesce(new.email, ''));
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email) VALUES ('delete', old.rowid, coalesce(old.name, ''), coalesce(old.email, ''));
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, email ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, name, email) VALUES ('delete', old.rowid, coalesce(old.name, ''), coalesce(old.email, ''));
    INSERT INTO contacts_fts (rowid, name, email) VALUES (new.rowid, coalesce(new.name, ''), coalesce(new.email, ''));
END;
