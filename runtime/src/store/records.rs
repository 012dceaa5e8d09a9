//! Functions and secrets.

use bytes::Bytes;

use super::{Page, Store, buckets as b, owner_key};
use crate::model::{Function, Quotas, Secret};
use crate::ports::Scan;
use crate::{Error, Result};

impl Store {
    /// Creates a function and its owner index entry; `Conflict` when the owner has
    /// a function of that name (names compare case-insensitively).
    pub async fn create_function(&self, f: &Function) -> Result<()> {
        self.kv()
            .create(
                b::FUNCTION_NAMES,
                &function_name_key(&f.owner_id, &f.name),
                Bytes::from(f.id.clone()),
            )
            .await
            .map_err(|e| match e {
                Error::Conflict(_) => {
                    Error::Conflict(format!("a function named {} exists", f.name))
                }
                other => other,
            })?;
        if let Err(e) = self.create_json(b::FUNCTIONS, &f.id, f).await {
            let _ = self
                .kv()
                .delete(b::FUNCTION_NAMES, &function_name_key(&f.owner_id, &f.name))
                .await;
            return Err(e);
        }
        self.kv()
            .put(
                b::FUNCTIONS_BY_OWNER,
                &owner_key(&f.owner_id, &f.id),
                Bytes::new(),
            )
            .await?;
        Ok(())
    }

    /// A function by id, only if `owner` owns it (`None` = any owner).
    pub async fn get_function(&self, id: &str, owner: Option<&str>) -> Result<Option<Function>> {
        Ok(self.get_function_rev(id, owner).await?.map(|(f, _)| f))
    }

    /// The owner's functions, newest first.
    pub async fn list_functions(
        &self,
        owner: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Function>> {
        let ids = self
            .index_page(b::FUNCTIONS_BY_OWNER, owner, cursor, limit + 1)
            .await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(f) = self.get_function(&id, Some(owner)).await? {
                items.push(f);
            }
        }
        Ok(page(&mut items, limit, |f| f.id.clone()))
    }

    /// Deletes a function record, its versions, its index entries, its HTTP
    /// settings and keys, its schedules.
    pub async fn delete_function(&self, f: &Function) -> Result<()> {
        self.kv().delete(b::FUNCTIONS, &f.id).await?;
        self.delete_versions_of(&f.id).await?;
        self.delete_http_of(&f.id).await?;
        self.delete_schedules_of(&f.id).await?;
        self.kv()
            .delete(b::FUNCTIONS_BY_OWNER, &owner_key(&f.owner_id, &f.id))
            .await?;
        let key = function_name_key(&f.owner_id, &f.name);
        if let Some(e) = self.kv().get(b::FUNCTION_NAMES, &key).await?
            && e.value.as_ref() == f.id.as_bytes()
        {
            self.kv().delete(b::FUNCTION_NAMES, &key).await?;
        }
        Ok(())
    }

    /// The owner's function called `name` (any case).
    pub async fn find_function(&self, owner: &str, name: &str) -> Result<Option<Function>> {
        let Some(e) = self
            .kv()
            .get(b::FUNCTION_NAMES, &function_name_key(owner, name))
            .await?
        else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&e.value).into_owned();
        self.get_function(&id, Some(owner)).await
    }

    /// How many functions the owner has.
    pub async fn count_functions(&self, owner: &str) -> Result<u64> {
        self.kv()
            .count(b::FUNCTIONS_BY_OWNER, &format!("{owner}."))
            .await
    }

    /// How many secrets the owner has.
    pub async fn count_secrets(&self, owner: &str) -> Result<u64> {
        self.kv().count(b::SECRET_NAMES, &format!("{owner}.")).await
    }

    /// The user's quota overrides (none set: all `None`).
    pub async fn get_quotas(&self, user_id: &str) -> Result<Quotas> {
        Ok(self
            .get_json::<Quotas>(b::QUOTAS, user_id)
            .await?
            .map(|(q, _)| q)
            .unwrap_or_default())
    }

    /// Replaces the user's quota overrides.
    pub async fn put_quotas(&self, user_id: &str, q: &Quotas) -> Result<()> {
        self.put_json(b::QUOTAS, user_id, q).await.map(|_| ())
    }

    /// Creates a secret; `Conflict` when the owner already has one of that name in
    /// any case (functions see the name upper-cased).
    pub async fn create_secret(&self, s: &Secret) -> Result<()> {
        self.kv()
            .create(
                b::SECRET_NAMES,
                &secret_name_key(&s.owner_id, &s.name),
                Bytes::from(s.id.clone()),
            )
            .await
            .map_err(|e| match e {
                Error::Conflict(_) => Error::Conflict(format!("a secret named {} exists", s.name)),
                other => other,
            })?;
        self.create_json(b::SECRETS, &s.id, s).await?;
        Ok(())
    }

    /// A secret by id, only if `owner` owns it.
    pub async fn get_secret(&self, id: &str, owner: &str) -> Result<Option<(Secret, u64)>> {
        let s: Option<(Secret, u64)> = self.get_json(b::SECRETS, id).await?;
        Ok(s.filter(|(s, _)| s.owner_id == owner))
    }

    /// The owner's secret called `name`.
    pub async fn find_secret(&self, owner: &str, name: &str) -> Result<Option<Secret>> {
        let mut entry = self
            .kv()
            .get(b::SECRET_NAMES, &secret_name_key(owner, name))
            .await?;
        if entry.is_none() {
            // Secrets named before names were compared case-insensitively.
            entry = self
                .kv()
                .get(b::SECRET_NAMES, &owner_key(owner, name))
                .await?;
        }
        let Some(entry) = entry else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&entry.value).into_owned();
        Ok(self.get_secret(&id, owner).await?.map(|(s, _)| s))
    }

    /// Rewrites a secret at `revision`.
    pub async fn update_secret(&self, s: &Secret, revision: u64) -> Result<u64> {
        self.update_json(b::SECRETS, &s.id, s, revision).await
    }

    /// The owner's secrets by name.
    pub async fn list_secrets(&self, owner: &str) -> Result<Vec<Secret>> {
        let prefix = format!("{owner}.");
        let rows = self
            .kv()
            .scan(
                b::SECRET_NAMES,
                Scan {
                    prefix,
                    ..Scan::default()
                },
            )
            .await?;
        let mut out: Vec<Secret> = Vec::with_capacity(rows.len());
        for (_, e) in rows {
            let id = String::from_utf8_lossy(&e.value).into_owned();
            if out.iter().any(|s| s.id == id) {
                continue;
            }
            if let Some((s, _)) = self.get_secret(&id, owner).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Deletes a secret and its name entry.
    pub async fn delete_secret(&self, s: &Secret) -> Result<()> {
        self.kv().delete(b::SECRETS, &s.id).await?;
        for key in [
            secret_name_key(&s.owner_id, &s.name),
            owner_key(&s.owner_id, &s.name),
        ] {
            if let Some(e) = self.kv().get(b::SECRET_NAMES, &key).await?
                && e.value.as_ref() == s.id.as_bytes()
            {
                self.kv().delete(b::SECRET_NAMES, &key).await?;
            }
        }
        Ok(())
    }
}

/// Index key of a user-chosen name: the owner and the name, lower-cased, its dots
/// as `=` (so `a..b` or `a.` never make an empty token of a NATS subject).
pub(crate) fn name_key(owner: &str, name: &str) -> String {
    owner_key(owner, &name.to_ascii_lowercase().replace('.', "="))
}

fn secret_name_key(owner: &str, name: &str) -> String {
    name_key(owner, name)
}

fn function_name_key(owner: &str, name: &str) -> String {
    name_key(owner, name)
}

/// Trims a `limit + 1` fetch to `limit` and derives the next cursor.
pub(crate) fn page<T>(items: &mut Vec<T>, limit: usize, id: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more { items.last().map(&id) } else { None };
    Page {
        items: std::mem::take(items),
        next_cursor,
    }
}
