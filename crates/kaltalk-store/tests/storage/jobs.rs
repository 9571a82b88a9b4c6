use std::collections::HashSet;

use chrono::Duration;
use kaltalk_core::job::{AiTurn, IndexSource, JobPayload, Reembed};
use kaltalk_core::{ConversationId, MessageId, OrgId};
use kaltalk_store::{JobLane, JobState, NewJob, Store};
use serde::{Deserialize, Serialize};

use crate::helpers::{now, test_stores};

/// A job kind of the tests alone.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct TestJob {
    n: usize,
}

impl JobPayload for TestJob {
    const KIND: &'static str = "test.job";
}

fn job(n: usize) -> NewJob {
    NewJob::new(&TestJob { n })
}

#[tokio::test]
async fn claimed_job_completes_once() {
    for (backend, store) in test_stores().await.stores {
        let t0 = now();
        let id = store.enqueue_job(job(1), t0).await.expect(backend);
        let claimed = store
            .claim_job("w1", Duration::seconds(30), t0)
            .await
            .expect(backend)
            .expect("a job");
        assert_eq!(claimed.id, id);
        assert_eq!(claimed.attempts, 1);
        assert!(
            store
                .claim_job("w2", Duration::seconds(30), t0)
                .await
                .expect(backend)
                .is_none(),
            "{backend}: leased"
        );
        assert!(
            !store.complete_job(id, "w2", t0).await.expect(backend),
            "{backend}: not w2's"
        );
        assert!(store.complete_job(id, "w1", t0).await.expect(backend));
        assert_eq!(
            store.get_job(id).await.expect(backend).state,
            JobState::Done
        );
    }
}

#[tokio::test]
async fn a_job_whose_worker_died_is_claimed_again_after_the_lease() {
    for (backend, store) in test_stores().await.stores {
        let t0 = now();
        let id = store.enqueue_job(job(1), t0).await.expect(backend);
        // Worker A claims and then dies: it never completes or fails the job.
        store
            .claim_job("worker-a", Duration::seconds(60), t0)
            .await
            .expect(backend)
            .expect("claimed");
        assert!(
            store
                .claim_job(
                    "worker-b",
                    Duration::seconds(60),
                    t0 + Duration::seconds(59)
                )
                .await
                .expect(backend)
                .is_none()
        );

        let reclaimed = store
            .claim_job(
                "worker-b",
                Duration::seconds(60),
                t0 + Duration::seconds(61),
            )
            .await
            .expect(backend)
            .expect("claimed again after the lease");
        assert_eq!(reclaimed.id, id, "{backend}");
        assert_eq!(reclaimed.attempts, 2);
        assert_eq!(reclaimed.locked_by.as_deref(), Some("worker-b"));
        // A's late answer no longer counts.
        assert!(
            !store
                .complete_job(id, "worker-a", t0 + Duration::seconds(62))
                .await
                .expect(backend)
        );
        assert!(
            store
                .complete_job(id, "worker-b", t0 + Duration::seconds(62))
                .await
                .expect(backend)
        );
    }
}

#[tokio::test]
async fn failures_back_off_then_dead_letter() {
    for (backend, store) in test_stores().await.stores {
        let mut t = now();
        let mut new = job(1);
        new.max_attempts = 3;
        let id = store.enqueue_job(new, t).await.expect(backend);
        for attempt in 1..=3 {
            let claimed = store
                .claim_job("w", Duration::seconds(30), t)
                .await
                .expect(backend)
                .expect("due");
            assert_eq!(claimed.attempts, attempt);
            let state = store
                .fail_job(&claimed, "w", "boom", t)
                .await
                .expect(backend);
            if attempt < 3 {
                assert_eq!(state, JobState::Queued, "{backend}");
                // Not due before its backoff.
                assert!(
                    store
                        .claim_job("w", Duration::seconds(30), t)
                        .await
                        .expect(backend)
                        .is_none()
                );
                t += kaltalk_store_backoff(attempt);
            } else {
                assert_eq!(state, JobState::Dead, "{backend}");
            }
        }
        let dead = store.get_job(id).await.expect(backend);
        assert_eq!(dead.state, JobState::Dead);
        assert_eq!(dead.last_error.as_deref(), Some("boom"));
        assert!(
            store
                .claim_job("w", Duration::seconds(30), t + Duration::days(1))
                .await
                .expect(backend)
                .is_none()
        );
    }
}

fn kaltalk_store_backoff(attempts: i32) -> Duration {
    kaltalk_store::backoff(attempts)
}

#[tokio::test]
async fn a_worker_that_dies_on_the_last_attempt_dead_letters_the_job() {
    for (backend, store) in test_stores().await.stores {
        let t0 = now();
        let mut new = job(1);
        new.max_attempts = 1;
        let id = store.enqueue_job(new, t0).await.expect(backend);
        store
            .claim_job("w", Duration::seconds(10), t0)
            .await
            .expect(backend)
            .expect("claimed");
        assert!(
            store
                .claim_job("w2", Duration::seconds(10), t0 + Duration::seconds(11))
                .await
                .expect(backend)
                .is_none()
        );
        assert_eq!(
            store.get_job(id).await.expect(backend).state,
            JobState::Dead,
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_never_claim_the_same_job() {
    for (backend, store) in test_stores().await.stores {
        let t0 = now();
        for n in 0..120 {
            store.enqueue_job(job(n), t0).await.expect(backend);
        }
        let mut workers = Vec::new();
        for w in 0..4 {
            let store: Store = store.clone();
            workers.push(tokio::spawn(async move {
                let name = format!("w{w}");
                let mut mine = Vec::new();
                while let Some(job) = store
                    .claim_job(&name, Duration::seconds(60), t0)
                    .await
                    .expect("claim")
                {
                    assert!(
                        store
                            .complete_job(job.id, &name, t0)
                            .await
                            .expect("complete")
                    );
                    mine.push(job.id);
                }
                mine
            }));
        }
        let mut seen = HashSet::new();
        let mut total = 0;
        for worker in workers {
            for id in worker.await.expect("worker") {
                total += 1;
                assert!(seen.insert(id), "{backend}: job {id} claimed twice");
            }
        }
        assert_eq!(total, 120, "{backend}");
    }
}

#[tokio::test]
async fn housekeeping_drops_expired_sessions_tokens_and_old_finished_jobs() {
    use kaltalk_store::{NewSession, Purged, TokenPurpose};
    for (backend, store) in test_stores().await.stores {
        let (user, org) = crate::helpers::sign_up(&store, "ada@example.com").await;
        let t0 = now();
        for (hash, hours) in [("short", 1), ("long", 48)] {
            let session = NewSession {
                token_hash: hash.into(),
                user_id: user,
                org_id: org.id,
                csrf_token: "c".into(),
                expires_at: t0 + Duration::hours(hours),
            };
            store.create_session(&session, t0).await.expect(backend);
        }
        let token = kaltalk_store::LinkToken {
            token_hash: "reset",
            expires_at: t0 + Duration::hours(1),
        };
        store
            .issue_user_token(
                user,
                TokenPurpose::ResetPassword,
                "ada@example.com",
                token,
                &crate::helpers::kept_email("ada@example.com"),
                t0,
            )
            .await
            .expect(backend);
        let done = store.enqueue_job(job(1), t0).await.expect(backend);
        let claimed = store
            .claim_job("w", Duration::seconds(30), t0)
            .await
            .expect(backend)
            .expect("job");
        store
            .complete_job(claimed.id, "w", t0)
            .await
            .expect(backend);
        let mut failing = job(2);
        failing.max_attempts = 1;
        let dead = store.enqueue_job(failing, t0).await.expect(backend);
        let claimed = store
            .claim_job("w", Duration::seconds(30), t0)
            .await
            .expect(backend)
            .expect("job");
        store
            .fail_job(&claimed, "w", "boom", t0)
            .await
            .expect(backend);

        store
            .claim_idempotency_key(org.id, "k", "POST /contacts", "h", t0)
            .await
            .expect(backend);
        assert_eq!(
            store.purge_expired(t0).await.expect(backend),
            Purged::default(),
            "{backend}: nothing is due yet"
        );
        let purged = store
            .purge_expired(t0 + Duration::days(8))
            .await
            .expect(backend);
        assert_eq!(
            purged,
            Purged {
                sessions: 2,
                tokens: 1,
                jobs: 1,
                idempotency_keys: 1,
            },
            "{backend}"
        );
        assert!(
            store.get_job(done).await.is_err(),
            "{backend}: the old finished job is gone"
        );
        assert_eq!(
            store.get_job(dead).await.expect(backend).state,
            JobState::Dead,
            "{backend}: dead jobs stay"
        );
    }
}

#[tokio::test]
async fn knowledge_jobs_have_their_own_lane() {
    for (backend, store) in test_stores().await.stores {
        let t0 = now();
        // The long indexing job is older: a shared queue would hand it out first.
        let index = store
            .enqueue_job(
                NewJob::new(&IndexSource {
                    org_id: OrgId::new(),
                    source_id: uuid::Uuid::now_v7(),
                }),
                t0,
            )
            .await
            .expect(backend);
        let turn = store
            .enqueue_job(
                NewJob::new(&AiTurn {
                    org_id: OrgId::new(),
                    conversation_id: ConversationId::new(),
                    message_id: MessageId::new(),
                    ip: None,
                }),
                t0 + Duration::seconds(1),
            )
            .await
            .expect(backend);
        let later = t0 + Duration::seconds(2);
        let lease = Duration::seconds(30);
        let claim = |worker: &'static str, lane| store.claim_job_in(worker, lease, later, lane);
        let first = claim("c", JobLane::Conversations).await.expect(backend);
        assert_eq!(first.map(|j| j.id), Some(turn), "{backend}: the turn first");
        assert!(
            claim("c", JobLane::Conversations)
                .await
                .expect(backend)
                .is_none(),
            "{backend}: conversation workers never take knowledge jobs"
        );
        let knowledge = claim("k", JobLane::Knowledge).await.expect(backend);
        assert_eq!(knowledge.map(|j| j.id), Some(index), "{backend}");
        assert!(
            claim("k", JobLane::Knowledge)
                .await
                .expect(backend)
                .is_none(),
            "{backend}: nothing else is a knowledge job"
        );
    }
}

#[tokio::test]
async fn a_renewed_lease_keeps_a_long_job_from_being_claimed_again() {
    for (backend, store) in test_stores().await.stores {
        let t0 = now();
        let id = store.enqueue_job(job(1), t0).await.expect(backend);
        let lease = Duration::seconds(60);
        store
            .claim_job("busy", lease, t0)
            .await
            .expect(backend)
            .expect("claimed");
        // Still working 50 s in: the worker renews for another minute.
        assert!(
            store
                .renew_job_lease(id, "busy", t0 + Duration::seconds(50) + lease)
                .await
                .expect(backend)
        );
        // Past the first lease, the job is still held.
        let after_first_lease = t0 + Duration::seconds(90);
        assert!(
            store
                .claim_job("other", lease, after_first_lease)
                .await
                .expect(backend)
                .is_none(),
            "{backend}: renewed, not due again"
        );
        assert!(
            !store
                .renew_job_lease(id, "other", after_first_lease + lease)
                .await
                .expect(backend),
            "{backend}: only the holder renews"
        );
        // Once renewals stop (the worker died), it becomes due again.
        let claimed = store
            .claim_job("other", lease, t0 + Duration::seconds(111))
            .await
            .expect(backend);
        assert_eq!(claimed.map(|j| j.id), Some(id), "{backend}");
    }
}

#[test]
fn every_knowledge_job_kind_is_in_the_knowledge_lane() {
    // The lane is chosen in SQL by the `knowledge.` prefix.
    for kind in [IndexSource::KIND, Reembed::KIND] {
        assert!(kind.starts_with("knowledge."), "{kind}");
    }
    for kind in kaltalk_core::job::ALL_KINDS {
        let knowledge = kind == IndexSource::KIND || kind == Reembed::KIND;
        assert_eq!(kind.starts_with("knowledge."), knowledge, "{kind}");
    }
}
