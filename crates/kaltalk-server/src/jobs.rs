//! The job worker: claims jobs from the store's queue and runs them. `serve` runs a few of
//! these; tests call [`run_one`] to drain the queue step by step instead of sleeping.

use std::time::Duration;

use anyhow::{Context, anyhow};
use kaltalk_core::EmailId;
use kaltalk_mail::OutgoingEmail;
use kaltalk_store::{Job, JobLane, JobState};
use tokio::sync::watch;

use crate::state::AppState;

/// What one pass of the worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Nothing,
    Done(String),
    Failed { kind: String, state: JobState },
}

/// Claims and runs one due job of any kind, if any.
pub async fn run_one(state: &AppState, worker: &str) -> anyhow::Result<Ran> {
    run_one_in(state, worker, JobLane::Any).await
}

/// Claims and runs one due job of `lane`, if any. While it runs, its lease is renewed.
pub async fn run_one_in(state: &AppState, worker: &str, lane: JobLane) -> anyhow::Result<Ran> {
    let lease = chrono::Duration::seconds(state.config.jobs.lease_seconds);
    let Some(job) = state
        .store
        .claim_job_in(worker, lease, state.now(), lane)
        .await?
    else {
        return Ok(Ran::Nothing);
    };
    let outcome = tokio::select! {
        outcome = handle(state, &job) => outcome,
        () = keep_leased(state, &job, worker, lease) => {
            Err(anyhow!("another worker took the job over: its lease could not be renewed"))
        }
    };
    match outcome {
        Ok(()) => {
            state
                .store
                .complete_job(job.id, worker, state.now())
                .await?;
            metrics::counter!("kaltalk_jobs_total", "kind" => job.kind.clone(), "outcome" => "done").increment(1);
            Ok(Ran::Done(job.kind))
        }
        Err(err) => {
            let message = format!("{err:#}");
            let new_state = state
                .store
                .fail_job(&job, worker, &message, state.now())
                .await?;
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %message, "job failed");
            if new_state == JobState::Dead {
                on_dead(state, &job).await;
            }
            metrics::counter!("kaltalk_jobs_total", "kind" => job.kind.clone(), "outcome" => "failed").increment(1);
            Ok(Ran::Failed {
                kind: job.kind,
                state: new_state,
            })
        }
    }
}

/// Renews the lease every third of it for as long as the job runs; returns only when the
/// worker lost the job (so the caller stops working on it).
async fn keep_leased(state: &AppState, job: &Job, worker: &str, lease: chrono::Duration) {
    let every = lease.to_std().unwrap_or(Duration::from_secs(60)) / 3;
    loop {
        tokio::time::sleep(every).await;
        match state
            .store
            .renew_job_lease(job.id, worker, state.now() + lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            // A database hiccup: try again at the next beat; the lease still runs.
            Err(err) => tracing::warn!(job = %job.id, error = %err, "could not renew a job lease"),
        }
    }
}

async fn handle(state: &AppState, job: &Job) -> anyhow::Result<()> {
    match job.kind.as_str() {
        kaltalk_store::DELIVER_EMAIL_JOB => deliver_email(state, job).await,
        kaltalk_store::chat::AI_TURN_JOB => crate::agent::take_turn(state, job).await,
        kaltalk_store::email::EMAIL_REPLY_JOB => crate::email::reply::send(state, job).await,
        kaltalk_store::knowledge::INDEX_SOURCE_JOB => {
            crate::knowledge::index_source(state, job).await
        }
        kaltalk_store::knowledge::REEMBED_JOB => crate::knowledge::reembed(state, job).await,
        kaltalk_store::webhooks::WEBHOOK_DELIVER_JOB => crate::webhooks::deliver(state, job).await,
        other => Err(anyhow!("no handler for job kind {other:?}")),
    }
}

fn email_id(job: &Job) -> anyhow::Result<EmailId> {
    let id = job
        .payload
        .0
        .get("email_id")
        .and_then(|v| v.as_str())
        .context("payload has no email_id")?;
    id.parse().context("email_id is not a uuid")
}

async fn deliver_email(state: &AppState, job: &Job) -> anyhow::Result<()> {
    let email = state.store.get_email_for_delivery(email_id(job)?).await?;
    if email.state == kaltalk_store::EmailState::Sent {
        return Ok(()); // a retry after a crash between sending and recording
    }
    state
        .mailer
        .send(OutgoingEmail {
            to: &email.to_address,
            subject: &email.subject,
            text: &email.text_body,
            html: &email.html_body,
        })
        .await?;
    state.store.mark_email_sent(email.id, state.now()).await?;
    Ok(())
}

async fn on_dead(state: &AppState, job: &Job) {
    if job.kind == kaltalk_store::email::EMAIL_REPLY_JOB {
        crate::email::reply::gave_up(state, job).await;
        return;
    }
    let email = (job.kind == kaltalk_store::DELIVER_EMAIL_JOB)
        .then(|| email_id(job))
        .and_then(Result::ok);
    if let Some(id) = email
        && let Err(err) = state.store.mark_email_failed(id).await
    {
        tracing::error!(error = %err, "could not mark email failed");
    }
}

/// Runs jobs of `lane` until `shutdown` turns true, finishing the job in hand before it
/// stops.
pub async fn work(
    state: AppState,
    worker: String,
    lane: JobLane,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let idle = match run_one_in(&state, &worker, lane).await {
            Ok(Ran::Nothing) => true,
            Ok(_) => false,
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "job worker error");
                true
            }
        };
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
