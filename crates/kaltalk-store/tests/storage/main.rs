//! The storage test story. Every test runs on SQLite, and again on PostgreSQL when
//! `KALTALK_TEST_DATABASE_URL` is set, each time on a fresh database.

mod helpers;

mod accounts;
mod api;
mod bounds;
mod chat;
mod contacts;
mod devices;
mod email;
mod events;
mod hours;
mod jobs;
mod knowledge;
mod mentions;
mod notifications;
mod privacy;
mod routing;
mod search;
mod setup;
mod webhooks;
