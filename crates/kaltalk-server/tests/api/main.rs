//! Integration tests: the real server on port 0, a fresh database per test (SQLite, or
//! PostgreSQL when `KALTALK_TEST_DATABASE_URL` is set), a clock the test controls.

mod chat_helpers;
mod helpers;

mod accounts;
mod ai;
mod api;
mod cross_org;
mod csrf;
mod email;
mod embeddings;
mod inbox;
mod knowledge;
mod operations;
mod teams;
mod widget;
