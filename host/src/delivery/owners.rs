//! [`Owners`]: this process' short memory of which live project owns a key prefix, so that a
//! `GET /blobs/{key}` of a public variant (the hottest request there is) does not ask the
//! database each time. An entry lives [`FRESH_FOR`]; a change of a project's settings or its
//! deletion in this process forgets it at once, so here a switch to private refuses unsigned
//! URLs on the next request; another API process of a cluster sees it within [`FRESH_FOR`].
//! Only live projects are kept, and at most [`CAPACITY`] of them: requests for random ids cannot
//! grow it. A look-up that raced a change (read the row before the change, came back after the
//! forget) is not kept: every forget starts a new generation, and `put` names the generation its
//! read began in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::projects::service::Project;

/// How long a project looked up stays trusted without asking the database again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Projects remembered at most; when full, the memory starts over.
pub const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct Owners {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_id: HashMap<Uuid, (Instant, Arc<Project>)>,
    /// Forgets so far: a look-up begun before one may hold what it forgot.
    generation: u64,
}

impl Owners {
    /// The project `id`, when it was looked up less than [`FRESH_FOR`] ago.
    pub fn get(&self, id: Uuid) -> Option<Arc<Project>> {
        let entries = crate::sync::lock(&self.entries);
        let (at, project) = entries.by_id.get(&id)?;
        (at.elapsed() < FRESH_FOR).then(|| Arc::clone(project))
    }

    /// The generation to name in [`Owners::put`]: read it before the database.
    pub fn generation(&self) -> u64 {
        crate::sync::lock(&self.entries).generation
    }

    /// Remembers the live project `id`, read from the database since `generation` began; a
    /// read that a forget overtook is dropped.
    pub fn put(&self, id: Uuid, project: Arc<Project>, generation: u64) {
        let mut entries = crate::sync::lock(&self.entries);
        if entries.generation != generation {
            return;
        }
        if entries.by_id.len() >= CAPACITY {
            entries.by_id.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
            if entries.by_id.len() >= CAPACITY {
                entries.by_id.clear();
            }
        }
        entries.by_id.insert(id, (Instant::now(), project));
    }

    /// Forgets `id`: its settings changed or it was deleted (call after the write commits).
    pub fn forget(&self, id: Uuid) {
        let mut entries = crate::sync::lock(&self.entries);
        entries.by_id.remove(&id);
        entries.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::projects::ProjectRow;

    fn project(id: Uuid) -> Arc<Project> {
        let row = ProjectRow {
            id,
            owner_id: Uuid::now_v7(),
            name: "p".into(),
            slug: "p".into(),
            settings: "{}".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        Arc::new(Project { row, settings: Default::default() })
    }

    #[test]
    fn remembers_for_a_moment_forgets_on_change_and_stays_bounded() {
        let owners = Owners::default();
        let id = Uuid::now_v7();
        assert!(owners.get(id).is_none());
        owners.put(id, project(id), owners.generation());
        assert_eq!(owners.get(id).map(|p| p.row.id), Some(id));
        owners.forget(id);
        assert!(owners.get(id).is_none(), "a changed project is looked up again");

        // A look-up that began before a change and ends after its forget is not kept.
        let began = owners.generation();
        owners.forget(id);
        owners.put(id, project(id), began);
        assert!(owners.get(id).is_none(), "a read overtaken by a change is dropped");

        let stale = Instant::now().checked_sub(FRESH_FOR).expect("a moment ago");
        crate::sync::lock(&owners.entries).by_id.insert(id, (stale, project(id)));
        assert!(owners.get(id).is_none(), "an entry older than FRESH_FOR is not trusted");

        for _ in 0..CAPACITY + 10 {
            let other = Uuid::now_v7();
            owners.put(other, project(other), owners.generation());
        }
        assert!(crate::sync::lock(&owners.entries).by_id.len() <= CAPACITY);
    }
}
