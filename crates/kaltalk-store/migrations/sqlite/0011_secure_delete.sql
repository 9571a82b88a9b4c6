-- Deleted text must leave the file, not only the tables (the privacy policy's deletion
-- promise). An external-content FTS5 index normally records a deletion as a marker and
-- keeps the old terms until segments merge; 'secure-delete' removes them at once.
-- (The main database's pages are zeroed on delete by PRAGMA secure_delete, set on every
-- connection.)
INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1);
INSERT INTO contacts_fts (contacts_fts, rank) VALUES ('secure-delete', 1);
