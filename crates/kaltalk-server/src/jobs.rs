//! The job worker: claims jobs from the store's queue and runs them. `serve` runs a few of
//! these; tests call [`run_one`] to drain the queue step by step instead of sleeping.

use std::time::Duration;

use anyhow::anyhow;
use kaltalk_core::job::{
    AiTurn, DeliverEmail, DeliverNativePush, DeliverPush, DeliverWebhook, IndexSource, JobPayload,
    NotifyByEmail, Reembed, SendEmailReply,
};
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

/// Runs the job by its kind, with its payload read as that kind's struct: a payload that
/// does not fit fails the job with the reason.
async fn handle(state: &AppState, job: &Job) -> anyhow::Result<()> {
    match job.kind.as_str() {
        DeliverEmail::KIND => deliver_email(state, job.payload()?).await,
        AiTurn::KIND => crate::bot::take_turn(state, job.payload()?).await,
        SendEmailReply::KIND => crate::email::reply::send(state, job).await,
        IndexSource::KIND => crate::knowledge::index_source(state, job.payload()?).await,
        Reembed::KIND => crate::knowledge::reembed(state, job.payload()?).await,
        DeliverWebhook::KIND => crate::webhooks::deliver(state, job.payload()?).await,
        DeliverPush::KIND => crate::notifications::push::deliver(state, job.payload()?).await,
        NotifyByEmail::KIND => crate::notifications::email::send(state, job.payload()?).await,
        DeliverNativePush::KIND => {
            crate::notifications::native::deliver(state, job.payload()?).await
        }
        other => Err(anyhow!("no handler for job kind {other:?}")),
    }
}

async fn deliver_email(state: &AppState, job: DeliverEmail) -> anyhow::Result<()> {
    let email = state.store.get_email_for_delivery(job.email_id).await?;
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
    if job.kind == SendEmailReply::KIND {
        crate::email::reply::gave_up(state, job).await;
        return;
    }
    if let Ok(DeliverEmail { email_id }) = job.payload()
        && let Err(err) = state.store.mark_email_failed(email_id).await
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
                _ = state.jobs_queued.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
