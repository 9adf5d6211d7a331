//! One request at a time per upload, within this process. A client whose connection dropped
//! mid-PATCH often asks HEAD at once, before the server has seen the drop and recorded what
//! arrived; HEAD (and the next PATCH) wait for that PATCH to settle, so the offset they see is the
//! one the resumed upload must start from. Between processes the database's offset fence still
//! decides (the later PATCH is a 409, and a client asks HEAD again).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

type Locks = Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>;

static UPLOADS: LazyLock<Locks> = LazyLock::new(Locks::default);

/// A request's turn at an upload; dropping it lets the next one in.
pub struct Turn {
    id: Uuid,
    guard: Option<OwnedMutexGuard<()>>,
}

/// Waits until no other request of this process works on upload `id`, at most `patience` (a
/// stalled PATCH holds its turn until the idle timeout cuts it off); then goes ahead anyway.
pub async fn wait_turn(id: Uuid, patience: Duration) -> Turn {
    let lock = crate::sync::lock(&UPLOADS).entry(id).or_default().clone();
    let guard = tokio::time::timeout(patience, lock.lock_owned()).await.ok();
    Turn { id, guard }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut uploads = crate::sync::lock(&UPLOADS);
        // Nobody holds or waits for it: forget it, so the map holds only uploads in use.
        if uploads.get(&self.id).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            uploads.remove(&self.id);
        }
    }
}
