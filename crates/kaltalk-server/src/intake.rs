//! The server's side of the intake (see `kaltalk_store::intake`): every channel hands a
//! customer's message here once it has parsed it and stored its files. What the intake
//! wrote is published to connected sockets once committed; when it fails, the files no
//! message refers to are removed.

use kaltalk_store::StoreError;
use kaltalk_store::intake::{CustomerMessage, Stored};

use crate::state::AppState;

pub async fn take_in(state: &AppState, message: CustomerMessage<'_>) -> Result<Stored, StoreError> {
    let attachments = message.attachments;
    match state.store.take_in(message, state.now()).await {
        Ok(written) => {
            state.hub.publish_events(written.events);
            Ok(written.value)
        }
        Err(err) => {
            for attachment in attachments {
                state.blobs.delete(&attachment.storage_key).await;
            }
            Err(err)
        }
    }
}
