use chrono::Duration;
use kaltalk_core::job::{IndexSource, JobPayload};
use kaltalk_store::StoreError;
use kaltalk_store::knowledge::{NewChunk, NewFileSource, SyncInterval};

use crate::helpers::{now, sign_up, test_stores};

fn chunk(text: &str) -> NewChunk {
    NewChunk {
        title: "Help".into(),
        heading_path: String::new(),
        url: None,
        text: text.into(),
        embedding: None,
        embedding_model: None,
    }
}

/// Claims every queued job; returns how many index jobs there were.
async fn drain_index_jobs(
    store: &kaltalk_store::Store,
    at: chrono::DateTime<chrono::Utc>,
) -> usize {
    let mut count = 0;
    while let Some(job) = store
        .claim_job("w", Duration::seconds(30), at)
        .await
        .expect("claim")
    {
        if job.kind == IndexSource::KIND {
            count += 1;
        }
        store.complete_job(job.id, "w", at).await.expect("complete");
    }
    count
}

#[tokio::test]
async fn a_scheduled_web_source_is_queued_once_when_due() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let t0 = now();
        let id = store
            .add_web_source(
                org.id,
                "site",
                "Docs",
                "https://acme.test/",
                Some(SyncInterval::Daily),
                t0,
            )
            .await
            .expect(backend);
        let once = store
            .add_web_source(org.id, "url", "Once", "https://acme.test/a", None, t0)
            .await
            .expect(backend);
        assert_eq!(drain_index_jobs(&store, t0).await, 2, "{backend}");
        for source in [id, once] {
            store
                .replace_chunks(org.id, source, 1, &[chunk("Refunds take 5 days.")], t0)
                .await
                .expect(backend);
        }
        let source = store.get_source(org.id, id).await.expect(backend);
        assert_eq!(source.sync_interval(), Some(SyncInterval::Daily));
        assert_eq!(source.next_sync_at, Some(t0 + Duration::days(1)));

        let early = t0 + Duration::hours(23);
        assert!(
            store
                .queue_due_syncs(early)
                .await
                .expect(backend)
                .is_empty(),
            "{backend}"
        );

        // Two instances ticking at the same moment: the source is queued by one of them.
        let due = t0 + Duration::hours(25);
        let (a, b) = tokio::join!(store.queue_due_syncs(due), store.queue_due_syncs(due));
        let mut queued = a.expect(backend);
        queued.extend(b.expect(backend));
        assert_eq!(queued, vec![(org.id, id)], "{backend}");
        assert!(
            store.queue_due_syncs(due).await.expect(backend).is_empty(),
            "{backend}: a second tick"
        );
        let source = store.get_source(org.id, id).await.expect(backend);
        assert_eq!(source.state, "queued");
        assert_eq!(source.next_sync_at, Some(due + Duration::days(1)));
        // Queued, but its chunks stay until the new ones replace them.
        assert_eq!(
            store.source_chunks(org.id, id).await.expect(backend).len(),
            1
        );

        // Still busy when due again: not queued twice; once it is idle, it is.
        let later = due + Duration::days(2);
        assert!(
            store
                .queue_due_syncs(later)
                .await
                .expect(backend)
                .is_empty(),
            "{backend}: busy"
        );
        store
            .replace_chunks(org.id, id, 1, &[chunk("Refunds take 3 days.")], later)
            .await
            .expect(backend);
        assert_eq!(
            store.queue_due_syncs(later).await.expect(backend).len(),
            1,
            "{backend}"
        );
        assert_eq!(
            drain_index_jobs(&store, later).await,
            2,
            "{backend}: one job per claim"
        );
    }
}

#[tokio::test]
async fn a_schedule_is_set_and_cleared_for_web_sources_only_of_the_same_org() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let (_, other) = sign_up(&store, "hank@globex.test").await;
        let t0 = now();
        let web = store
            .add_web_source(org.id, "url", "Page", "https://acme.test/a", None, t0)
            .await
            .expect(backend);
        let text = store
            .add_text_source(org.id, "Note", "Gift cards never expire.", t0)
            .await
            .expect(backend);
        assert_eq!(
            store
                .get_source(org.id, web)
                .await
                .expect(backend)
                .next_sync_at,
            None
        );

        store
            .set_sync_interval(org.id, web, Some(SyncInterval::Weekly), t0)
            .await
            .expect(backend);
        let source = store.get_source(org.id, web).await.expect(backend);
        assert_eq!(source.sync_interval_hours, Some(168));
        assert_eq!(source.next_sync_at, Some(t0 + Duration::weeks(1)));

        assert!(
            matches!(
                store.set_sync_interval(other.id, web, None, t0).await,
                Err(StoreError::NotFound)
            ),
            "{backend}: another org's source"
        );
        assert!(
            matches!(
                store
                    .set_sync_interval(org.id, text, Some(SyncInterval::Daily), t0)
                    .await,
                Err(StoreError::NotFound)
            ),
            "{backend}: a text does not change on its own"
        );

        store
            .set_sync_interval(org.id, web, None, t0)
            .await
            .expect(backend);
        let source = store.get_source(org.id, web).await.expect(backend);
        assert_eq!(
            (source.sync_interval_hours, source.next_sync_at),
            (None, None)
        );
    }
}

#[tokio::test]
async fn a_file_source_keeps_its_stored_file_until_it_is_deleted() {
    for (backend, store) in test_stores().await.stores {
        let (_, org) = sign_up(&store, "ada@acme.test").await;
        let (_, other) = sign_up(&store, "hank@globex.test").await;
        let t0 = now();
        let id = store
            .add_file_source(
                org.id,
                &NewFileSource {
                    title: "Manual",
                    file_name: "manual.pdf",
                    blob_key: "knowledge/x/y",
                },
                t0,
            )
            .await
            .expect(backend);
        let source = store.get_source(org.id, id).await.expect(backend);
        assert_eq!(
            (
                source.kind.as_str(),
                source.state.as_str(),
                source.file_name.as_deref(),
                source.blob_key.as_deref()
            ),
            ("file", "queued", Some("manual.pdf"), Some("knowledge/x/y"))
        );
        assert_eq!(drain_index_jobs(&store, t0).await, 1, "{backend}");
        assert!(
            matches!(
                store.delete_source(other.id, id, t0).await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        assert_eq!(
            store
                .delete_source(org.id, id, t0)
                .await
                .expect(backend)
                .as_deref(),
            Some("knowledge/x/y"),
            "{backend}: the key comes back for the caller to remove the file"
        );
        assert!(matches!(
            store.get_source(org.id, id).await,
            Err(StoreError::NotFound)
        ));
    }
}
