//! Users: records by id, and the username index keyed by the canonical username.
//!
//! Usernames are unique in their [`canonical_username`] form (`ADMIN` and `admin` are
//! one account). Records written before that rule are indexed by their exact
//! username; [`Store::find_user`] falls back to that key, and
//! [`Store::index_canonical_usernames`] adds the canonical keys they lack.

use bytes::Bytes;

use super::records::page;
use super::{Page, Store, buckets as b};
use crate::model::{User, canonical_username};
use crate::ports::Scan;
use crate::{Error, Result};

/// Marks the username index as fully keyed by canonical names (`=` is not a username
/// character, so no account can take this key).
const CANONICAL_MARKER: &str = "=canonical-v1";

/// Compare-and-set attempts before a contended user update gives up.
const UPDATE_TRIES: usize = 16;

impl Store {
    /// Creates a user; `Conflict` when the username is taken in any letter case.
    pub async fn create_user(&self, user: &User) -> Result<()> {
        let key = canonical_username(&user.username);
        self.kv()
            .create(b::USERNAMES, &key, Bytes::from(user.id.clone()))
            .await
            .map_err(|e| match e {
                Error::Conflict(_) => {
                    Error::Conflict(format!("username {} is taken", user.username))
                }
                other => other,
            })?;
        let created = self.create_json(b::USERS, &user.id, user).await;
        self.users.forget(&user.id);
        created?;
        Ok(())
    }

    /// A user by id.
    pub async fn get_user(&self, id: &str) -> Result<Option<(User, u64)>> {
        self.get_json(b::USERS, id).await
    }

    /// A user by username, in any letter case. The exact key is tried first: an
    /// account registered before usernames were canonical is indexed by its exact
    /// name (and two such accounts may differ only in case).
    pub async fn find_user(&self, username: &str) -> Result<Option<(User, u64)>> {
        let canonical = canonical_username(username);
        let mut keys = vec![username];
        if canonical != username {
            keys.push(&canonical);
        }
        for key in keys {
            if let Some(entry) = self.kv().get(b::USERNAMES, key).await? {
                let id = String::from_utf8_lossy(&entry.value).into_owned();
                return self.get_user(&id).await;
            }
        }
        Ok(None)
    }

    /// Rewrites a user at `revision`.
    pub async fn update_user(&self, user: &User, revision: u64) -> Result<u64> {
        let written = self.update_json(b::USERS, &user.id, user, revision).await;
        self.users.forget(&user.id);
        written
    }

    /// Applies `change` to the current record (compare-and-set, retried on a
    /// concurrent write) and returns the record written; `NotFound` if it is gone.
    pub async fn modify_user(&self, id: &str, change: impl Fn(&mut User)) -> Result<User> {
        for _ in 0..UPDATE_TRIES {
            let Some((mut user, revision)) = self.get_user(id).await? else {
                return Err(Error::NotFound(format!("user {id}")));
            };
            change(&mut user);
            match self.update_user(&user, revision).await {
                Ok(_) => return Ok(user),
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Unavailable(format!(
            "user {id} is being changed concurrently"
        )))
    }

    /// Ends every token issued to the user so far; returns the new generation.
    pub async fn revoke_tokens(&self, id: &str) -> Result<u64> {
        let user = self.modify_user(id, |u| u.token_generation += 1).await?;
        Ok(user.token_generation)
    }

    /// Sets a new password hash and ends every earlier token; returns the record.
    pub async fn set_password(&self, id: &str, password_hash: &str) -> Result<User> {
        self.modify_user(id, |u| {
            u.password_hash = password_hash.to_string();
            u.token_generation += 1;
        })
        .await
    }

    /// Users in id order after `cursor`.
    pub async fn list_users(&self, cursor: Option<&str>, limit: usize) -> Result<Page<User>> {
        let rows = self
            .kv()
            .scan(
                b::USERS,
                Scan {
                    after: cursor.map(str::to_string),
                    limit: limit + 1,
                    ..Scan::default()
                },
            )
            .await?;
        let mut items = rows
            .into_iter()
            .map(|(_, e)| serde_json::from_slice(&e.value).map_err(Error::from))
            .collect::<Result<Vec<User>>>()?;
        Ok(page(&mut items, limit, |u| u.id.clone()))
    }

    /// Adds the canonical index key of every user indexed only by its exact name
    /// (records older than canonical usernames); once done, a marker skips the scan.
    /// Where two old accounts differ only in case, the first keeps the canonical
    /// key and the other stays reachable by its exact name. Returns the keys added.
    pub async fn index_canonical_usernames(&self) -> Result<usize> {
        if self
            .kv()
            .get(b::USERNAMES, CANONICAL_MARKER)
            .await?
            .is_some()
        {
            return Ok(0);
        }
        let mut added = 0;
        let mut cursor = None;
        loop {
            let page = self.list_users(cursor.as_deref(), 200).await?;
            for user in &page.items {
                let key = canonical_username(&user.username);
                match self
                    .kv()
                    .create(b::USERNAMES, &key, Bytes::from(user.id.clone()))
                    .await
                {
                    Ok(_) => added += 1,
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        match self
            .kv()
            .create(b::USERNAMES, CANONICAL_MARKER, Bytes::new())
            .await
        {
            Ok(_) | Err(Error::Conflict(_)) => Ok(added),
            Err(e) => Err(e),
        }
    }
}
