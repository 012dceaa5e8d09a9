//! The sweep on the embedded backend (the NATS backend runs it in tests/schedules.rs).

use std::sync::Arc;

use super::*;
use crate::embedded::{Db, EmbeddedKv};
use crate::model::{Execution, ExecutionStatus, Function};
use crate::store::spill::INLINE_MAX;

fn store(dir: &std::path::Path) -> Store {
    Store::new(Arc::new(EmbeddedKv::new(Db::open(dir).unwrap())))
}

/// A final execution with a spilled input and output, ended `ago` before now.
async fn finished(s: &Store, ago: time::Duration) -> Execution {
    let f = Function::fixture("u");
    let mut e = Execution::pending(&f, format!("\"{}\"", "i".repeat(INLINE_MAX)));
    let made = now() - ago;
    e.id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        made.unix_timestamp() as u64,
        made.nanosecond(),
    ))
    .to_string();
    e.created_at = made;
    let rev = s.create_execution(&e).await.unwrap();
    e.status = ExecutionStatus::Completed;
    e.attempt = 1;
    e.output = Some("o".repeat(INLINE_MAX + 1));
    e.completed_at = Some(made);
    s.update_execution(&e, rev).await.unwrap();
    e
}

async fn chunks_of(s: &Store, id: &str) -> usize {
    let scan = Scan {
        prefix: format!("{id}."),
        ..Scan::default()
    };
    s.kv().scan(b::EXECUTION_DATA, scan).await.unwrap().len()
}

#[tokio::test]
async fn an_old_finished_execution_goes_with_its_chunks_and_a_new_one_stays() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let old = finished(&s, time::Duration::days(40)).await;
    let new = finished(&s, time::Duration::days(1)).await;
    let running = Execution::pending(&Function::fixture("u"), "{}".into());
    s.create_execution(&running).await.unwrap();
    assert!(chunks_of(&s, &old.id).await >= 2);

    let swept = s
        .sweep_executions(now() - time::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(swept.deleted, 1);
    assert!(s.get_execution(&old.id, None).await.unwrap().is_none());
    assert_eq!(chunks_of(&s, &old.id).await, 0);
    let index = format!("u.{}", old.id);
    let owner = s.kv().get(b::EXECUTIONS_BY_OWNER, &index).await.unwrap();
    assert!(owner.is_none());

    let (kept, _) = s.get_execution(&new.id, None).await.unwrap().unwrap();
    assert_eq!(kept.output, new.output);
    assert!(chunks_of(&s, &new.id).await >= 2);
    assert!(s.get_execution(&running.id, None).await.unwrap().is_some());
    let again = s.sweep_executions(now() - time::Duration::days(30));
    assert_eq!(again.await.unwrap().deleted, 0);
}

#[tokio::test]
async fn a_pending_execution_is_kept_however_old() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let mut e = Execution::pending(&Function::fixture("u"), "{}".into());
    e.created_at = now() - time::Duration::days(90);
    s.create_execution(&e).await.unwrap();
    let swept = s.sweep_executions(now()).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            examined: 1,
            deleted: 0
        }
    );
    assert!(s.get_execution(&e.id, None).await.unwrap().is_some());
}
