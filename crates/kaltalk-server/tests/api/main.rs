//! Integration tests: the real server on port 0, a fresh database per test (SQLite, or
//! PostgreSQL when `KALTALK_TEST_DATABASE_URL` is set), a clock the test controls.

mod chat_helpers;
// The extraction tests' file generators (PDF, DOCX, bombs), shared so that uploads here
// are built exactly as the extractor's own tests build them. Not every one is used here.
#[allow(dead_code)]
#[path = "../../../kaltalk-ai/tests/ai/fixtures.rs"]
mod fixtures;
mod helpers;

mod accounts;
mod ai;
mod ai_model;
mod api;
mod api_resources;
mod business_hours;
mod composer;
mod contacts;
mod cross_org;
mod cross_org_sweep;
mod csrf;
mod email;
mod email_channel;
mod embeddings;
mod event_golden;
mod inbox;
mod input;
mod intake;
mod knowledge;
mod mentions;
mod model_download;
mod native;
mod native_fakes;
mod notifications;
mod openapi;
mod operations;
mod playground;
mod push;
mod push_service;
mod setup;
mod team_routing;
mod teams;
mod webhooks;
mod widget;
mod widget_regressions;
mod workspace;
