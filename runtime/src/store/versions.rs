//! Function versions (bucket `function_versions`, key `<function id>.<number,
//! 20 digits>`) and the [`VersionIndex`] on the function record.
//!
//! The function record decides which versions exist and where aliases point;
//! every change of it is a compare-and-set, so an alias can never be set to a
//! version a concurrent delete removes. A version record is written before the
//! function record names it, and removed after the record stops naming it.
//! The newest version of a function stored before versions has no record: it is
//! read from the function record's mirror ([`Store::get_version`]).

use super::{Store, buckets as b};
use crate::model::version::MAX_VERSIONS;
use crate::model::{Function, FunctionVersion};
use crate::ports::Scan;
use crate::{Error, Result};

/// Compare-and-set attempts before giving up with `Conflict`.
const CAS_TRIES: usize = 16;

/// Key of version `n` of function `id`.
pub fn version_key(id: &str, n: u64) -> String {
    format!("{id}.{n:020}")
}

impl Store {
    /// A function with the revision of its record, only if `owner` owns it.
    pub async fn get_function_rev(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<(Function, u64)>> {
        let f: Option<(Function, u64)> = self.get_json(b::FUNCTIONS, id).await?;
        Ok(f.filter(|(f, _)| owner.is_none_or(|o| o == f.owner_id))
            .map(|(mut f, rev)| {
                f.versions.normalize();
                (f, rev)
            }))
    }

    /// Writes a version's record (`Conflict` when that number exists).
    pub async fn create_version(&self, v: &FunctionVersion) -> Result<()> {
        let key = version_key(&v.function_id, v.version);
        self.create_json(b::FUNCTION_VERSIONS, &key, v)
            .await
            .map(|_| ())
    }

    /// Version `n` of `f`, if `f` has it.
    pub async fn get_version(&self, f: &Function, n: u64) -> Result<Option<FunctionVersion>> {
        if !f.versions.has(n) {
            return Ok(None);
        }
        let key = version_key(&f.id, n);
        match self.get_json(b::FUNCTION_VERSIONS, &key).await? {
            Some((v, _)) => Ok(Some(v)),
            // Only the newest may lack a record (stored before versions): the
            // function record mirrors it.
            None if n == f.versions.latest_version => Ok(Some(FunctionVersion::of(f, n))),
            None => Ok(None),
        }
    }

    /// Every version of `f`, oldest first.
    pub async fn list_versions(&self, f: &Function) -> Result<Vec<FunctionVersion>> {
        Ok(self.list_versions_page(f, None, usize::MAX).await?.0)
    }

    /// At most `limit` versions of `f` numbered after `after`, oldest first, and
    /// the number to continue after when more remain.
    pub async fn list_versions_page(
        &self,
        f: &Function,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<FunctionVersion>, Option<u64>)> {
        let limit = limit.max(1);
        let numbers: Vec<u64> = f
            .versions
            .versions
            .iter()
            .copied()
            .filter(|&n| after.is_none_or(|a| n > a))
            .collect();
        let mut out = Vec::with_capacity(numbers.len().min(limit));
        for &n in numbers.iter().take(limit) {
            if let Some(v) = self.get_version(f, n).await? {
                out.push(v);
            }
        }
        let next = (numbers.len() > limit).then(|| numbers[limit - 1]);
        Ok((out, next))
    }

    /// Adds `v` (its number is ignored) as the newest version of the owner's
    /// function `id`; returns the function and the version as stored.
    pub async fn add_version(
        &self,
        id: &str,
        owner: &str,
        mut v: FunctionVersion,
    ) -> Result<(Function, FunctionVersion)> {
        for _ in 0..CAS_TRIES {
            let (mut f, rev) = self.owned_function(id, owner).await?;
            if f.versions.versions.len() >= MAX_VERSIONS {
                return Err(Error::Conflict(format!(
                    "a function keeps at most {MAX_VERSIONS} versions; delete old ones first"
                )));
            }
            self.materialize_latest(&f).await?;
            v.version = f.versions.latest_version + 1;
            match self.create_version(&v).await {
                Ok(()) => {}
                // Another request took that number: read again.
                Err(Error::Conflict(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
            v.mirror_into(&mut f);
            f.versions.latest_version = v.version;
            f.versions.versions.push(v.version);
            match self.update_json(b::FUNCTIONS, id, &f, rev).await {
                Ok(_) => return Ok((f, v)),
                Err(Error::Conflict(_)) => {
                    // An alias moved meanwhile; the number stays ours (its record
                    // exists), so drop it and try again with the next one.
                    let _ = self
                        .kv()
                        .delete(b::FUNCTION_VERSIONS, &version_key(id, v.version))
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict("the function kept changing; retry".into()))
    }

    /// Writes the record of `f`'s newest version if it has none (a function
    /// stored before versions) before another version replaces the mirror.
    async fn materialize_latest(&self, f: &Function) -> Result<()> {
        let n = f.versions.latest_version;
        let key = version_key(&f.id, n);
        if self.kv().get(b::FUNCTION_VERSIONS, &key).await?.is_some() {
            return Ok(());
        }
        match self.create_version(&FunctionVersion::of(f, n)).await {
            Ok(()) | Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Applies `change` to the owner's function record with compare-and-set,
    /// reading it again while it changes under us. `change` refuses with an error.
    pub async fn change_function(
        &self,
        id: &str,
        owner: &str,
        change: impl Fn(&mut Function) -> Result<()>,
    ) -> Result<Function> {
        for _ in 0..CAS_TRIES {
            let (mut f, rev) = self.owned_function(id, owner).await?;
            change(&mut f)?;
            match self.update_json(b::FUNCTIONS, id, &f, rev).await {
                Ok(_) => return Ok(f),
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict("the function kept changing; retry".into()))
    }

    /// Removes version `n` of the owner's function `id`: `Conflict` when an alias
    /// (`latest` included) points at it, `NotFound` when it does not exist.
    /// Returns the removed version.
    pub async fn delete_version(&self, id: &str, owner: &str, n: u64) -> Result<FunctionVersion> {
        let (f, _) = self.owned_function(id, owner).await?;
        let v = self
            .get_version(&f, n)
            .await?
            .ok_or_else(|| Error::NotFound(format!("version {n} not found")))?;
        self.change_function(id, owner, |f| {
            if !f.versions.has(n) {
                return Err(Error::NotFound(format!("version {n} not found")));
            }
            let aliases = f.versions.aliases_of(n);
            if !aliases.is_empty() {
                return Err(Error::Conflict(format!(
                    "version {n} is in use by alias {}; move the alias first",
                    aliases.join(", ")
                )));
            }
            f.versions.versions.retain(|&x| x != n);
            Ok(())
        })
        .await?;
        self.kv()
            .delete(b::FUNCTION_VERSIONS, &version_key(id, n))
            .await?;
        Ok(v)
    }

    /// Deletes every version record of function `id`.
    pub(crate) async fn delete_versions_of(&self, id: &str) -> Result<()> {
        let scan = Scan {
            prefix: format!("{id}."),
            ..Scan::default()
        };
        for (key, _) in self.kv().scan(b::FUNCTION_VERSIONS, scan).await? {
            self.kv().delete(b::FUNCTION_VERSIONS, &key).await?;
        }
        Ok(())
    }

    async fn owned_function(&self, id: &str, owner: &str) -> Result<(Function, u64)> {
        self.get_function_rev(id, Some(owner))
            .await?
            .ok_or_else(|| Error::NotFound("function not found".into()))
    }

    /// True when anything but `except` runs the module `sha256` (any owner): a
    /// function record (mirror of a newest version) or a version record.
    /// `except` is a whole function (`None`: its record and all its versions) or
    /// one version of it. Reads every record: only deletes of wasm functions and
    /// versions pay for it, and it needs no index older records would lack.
    pub async fn module_in_use(
        &self,
        sha256: &str,
        function_id: &str,
        version: Option<u64>,
    ) -> Result<bool> {
        let skip_function = |key: &str| version.is_none() && key == function_id;
        if self.any_record(b::FUNCTIONS, sha256, skip_function).await? {
            return Ok(true);
        }
        let prefix = format!("{function_id}.");
        let skip_version = |key: &str| match version {
            None => key.starts_with(&prefix),
            Some(n) => key == version_key(function_id, n),
        };
        self.any_record(b::FUNCTION_VERSIONS, sha256, skip_version)
            .await
    }

    /// True when a record of `bucket` not `skip`ped has `module_sha256` = `sha256`.
    async fn any_record(
        &self,
        bucket: &str,
        sha256: &str,
        skip: impl Fn(&str) -> bool,
    ) -> Result<bool> {
        #[derive(serde::Deserialize)]
        struct Module {
            module_sha256: Option<String>,
        }
        let mut after = None;
        loop {
            let scan = Scan {
                after: after.take(),
                limit: 500,
                ..Scan::default()
            };
            let rows = self.kv().scan(bucket, scan).await?;
            let last = rows.last().map(|(k, _)| k.clone());
            for (key, entry) in &rows {
                let m: Module = serde_json::from_slice(&entry.value).map_err(Error::from)?;
                if !skip(key) && m.module_sha256.as_deref() == Some(sha256) {
                    return Ok(true);
                }
            }
            match last {
                Some(k) if rows.len() == 500 => after = Some(k),
                _ => return Ok(false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::embedded::{Db, EmbeddedKv};

    fn wasm(sha: &str) -> crate::model::Runnable {
        crate::model::Runnable::Wasm(crate::model::WasmModule {
            module_sha256: sha.into(),
            ..Default::default()
        })
    }

    fn store(dir: &std::path::Path) -> Store {
        Store::new(Arc::new(EmbeddedKv::new(Db::open(dir).unwrap())))
    }

    /// A function record as written before versions: no index fields at all.
    async fn legacy(s: &Store) -> Function {
        let mut f = Function::fixture("u");
        f.runnable = wasm("aa");
        let mut json = serde_json::to_value(&f).unwrap();
        for k in ["latest_version", "versions", "aliases"] {
            json.as_object_mut().unwrap().remove(k);
        }
        s.put_json(b::FUNCTIONS, &f.id, &json).await.unwrap();
        s.get_function(&f.id, None).await.unwrap().unwrap()
    }

    fn version_of(f: &Function, sha: &str) -> FunctionVersion {
        let mut v = FunctionVersion::of(f, 0);
        v.runnable = wasm(sha);
        v
    }

    #[tokio::test]
    async fn a_function_stored_before_versions_has_version_one_and_gets_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let f = legacy(&s).await;
        assert_eq!(f.versions.latest_version, 1);
        let v1 = s.get_version(&f, 1).await.unwrap().unwrap();
        assert_eq!(v1.runnable.module_sha256(), Some("aa"));
        assert!(s.get_version(&f, 2).await.unwrap().is_none());

        let (f, v2) = s
            .add_version(&f.id, "u", version_of(&f, "bb"))
            .await
            .unwrap();
        assert_eq!((v2.version, f.versions.latest_version), (2, 2));
        assert_eq!(
            f.runnable.module_sha256(),
            Some("bb"),
            "the record mirrors latest"
        );
        // Version 1 kept its module once the mirror moved on.
        let v1 = s.get_version(&f, 1).await.unwrap().unwrap();
        assert_eq!(v1.runnable.module_sha256(), Some("aa"));
        assert_eq!(s.list_versions(&f).await.unwrap().len(), 2);
        assert!(s.module_in_use("aa", &f.id, Some(2)).await.unwrap());
        assert!(!s.module_in_use("aa", &f.id, Some(1)).await.unwrap());
        assert!(!s.module_in_use("bb", &f.id, None).await.unwrap());
    }

    #[tokio::test]
    async fn aliased_and_newest_versions_stay_and_others_go() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let f = legacy(&s).await;
        s.add_version(&f.id, "u", version_of(&f, "bb"))
            .await
            .unwrap();
        s.change_function(&f.id, "u", |f| {
            f.versions.aliases.insert("stable".into(), 1);
            Ok(())
        })
        .await
        .unwrap();
        let conflict = |r: Result<FunctionVersion>| matches!(r, Err(Error::Conflict(_)));
        assert!(conflict(s.delete_version(&f.id, "u", 1).await), "aliased");
        assert!(conflict(s.delete_version(&f.id, "u", 2).await), "latest");
        assert!(matches!(
            s.delete_version(&f.id, "someone else", 1).await,
            Err(Error::NotFound(_))
        ));
        s.change_function(&f.id, "u", |f| {
            f.versions.aliases.insert("stable".into(), 2);
            Ok(())
        })
        .await
        .unwrap();
        s.delete_version(&f.id, "u", 1).await.unwrap();
        let f = s.get_function(&f.id, None).await.unwrap().unwrap();
        assert_eq!(f.versions.versions, vec![2]);
        assert!(matches!(
            s.delete_version(&f.id, "u", 1).await,
            Err(Error::NotFound(_))
        ));
        s.delete_function(&f).await.unwrap();
        let left = s.kv().count(b::FUNCTION_VERSIONS, "").await.unwrap();
        assert_eq!(left, 0, "a deleted function leaves no version");
    }
}
