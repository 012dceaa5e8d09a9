//! What a version runs: [`Runnable`], one arm per executor.
//!
//! A wasm version runs a module named by its digest ([`WasmModule`]); an image
//! version runs an OCI image ([`ImageSpec`]). A third executor is one more arm
//! here (and one executor module), not more optional fields.
//!
//! On the wire (API answers and stored records alike) the arm is flattened into
//! the record: `"runtime": "wasm"` with `module_sha256` and `module_size`, or
//! `"runtime": "docker"` with `image_url`, `pull_policy` and `warm` -- the fields
//! records had before this type existed, so they read unchanged.

use serde::{Deserialize, Serialize};

use super::{PullPolicy, RuntimeKind};

/// What a version runs, with the settings of the runtime that runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "runtime", rename_all = "lowercase")]
pub enum Runnable {
    /// A wasm module or component run in-process by Wasmtime (`"runtime": "wasm"`).
    Wasm(WasmModule),
    /// An OCI image run by the Docker engine (`"runtime": "docker"`).
    #[serde(rename = "docker")]
    Image(ImageSpec),
}

/// A wasm module or component, kept in the modules bucket under its digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WasmModule {
    /// Hex SHA-256 of the module bytes (it names the stored module and its
    /// compiled artifact).
    #[serde(default)]
    pub module_sha256: String,
    /// Module size in bytes.
    #[serde(default)]
    pub module_size: u64,
    /// A core module or a component, as its header says (absent on records
    /// written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_kind: Option<WasmKind>,
}

/// The two binary formats of wasm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum WasmKind {
    /// A core module (a WASI preview1 command).
    Module,
    /// A component (`wasi:cli/command`, `faas:function` or `wasi:http/proxy`).
    Component,
}

/// An OCI image and how to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageSpec {
    /// Image reference.
    pub image_url: String,
    /// When to pull it; the operator's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// Containers kept started ahead of calls (warm pool); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<u32>,
}

impl ImageSpec {
    /// `image_url` with the operator's pull policy and no warm pool.
    pub fn new(image_url: impl Into<String>) -> Self {
        ImageSpec {
            image_url: image_url.into(),
            pull_policy: None,
            warm: None,
        }
    }
}

impl Runnable {
    /// The runtime (executor kind) that runs it.
    pub fn kind(&self) -> RuntimeKind {
        match self {
            Runnable::Wasm(_) => RuntimeKind::Wasm,
            Runnable::Image(_) => RuntimeKind::Docker,
        }
    }

    /// The wasm module, for a wasm version.
    pub fn wasm(&self) -> Option<&WasmModule> {
        match self {
            Runnable::Wasm(m) => Some(m),
            Runnable::Image(_) => None,
        }
    }

    /// The image, for an image version.
    pub fn image(&self) -> Option<&ImageSpec> {
        match self {
            Runnable::Image(i) => Some(i),
            Runnable::Wasm(_) => None,
        }
    }

    /// The image, mutably, for an image version.
    pub fn image_mut(&mut self) -> Option<&mut ImageSpec> {
        match self {
            Runnable::Image(i) => Some(i),
            Runnable::Wasm(_) => None,
        }
    }

    /// The module digest, for a wasm version.
    pub fn module_sha256(&self) -> Option<&str> {
        self.wasm().map(|m| m.module_sha256.as_str())
    }

    /// What a listing shows of it: the image, or `sha256:` and the first 12
    /// digits of the module's digest.
    pub fn source(&self) -> String {
        match self {
            Runnable::Image(i) => i.image_url.clone(),
            Runnable::Wasm(m) => {
                let sha = &m.module_sha256;
                format!("sha256:{}", &sha[..sha.len().min(12)])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[derive(Debug, Serialize, Deserialize)]
    struct Record {
        id: String,
        #[serde(flatten)]
        runnable: Runnable,
        timeout_secs: u64,
    }

    fn round_trip(v: Value) -> (Record, Value) {
        let r: Record = serde_json::from_value(v).unwrap();
        let back = serde_json::to_value(&r).unwrap();
        (r, back)
    }

    #[test]
    fn records_of_the_flat_fields_read_and_write_unchanged() {
        let wasm = json!({"id": "a", "runtime": "wasm", "module_sha256": "ab", "module_size": 3, "timeout_secs": 1});
        let (r, back) = round_trip(wasm.clone());
        assert_eq!(r.runnable.module_sha256(), Some("ab"));
        assert_eq!(back, wasm);
        let image = json!({"id": "b", "runtime": "docker", "image_url": "alpine:3", "pull_policy": "never", "timeout_secs": 1});
        let (r, back) = round_trip(image.clone());
        assert_eq!(r.runnable.kind(), RuntimeKind::Docker);
        assert_eq!(
            r.runnable.image().unwrap().pull_policy,
            Some(PullPolicy::Never)
        );
        assert_eq!(back, image);
        let bare =
            json!({"id": "c", "runtime": "docker", "image_url": "alpine:3", "timeout_secs": 1});
        assert_eq!(
            round_trip(bare.clone()).1,
            bare,
            "no policy, no warm: none written"
        );
    }

    #[test]
    fn a_warm_setting_and_a_module_kind_are_kept() {
        let image =
            json!({"id": "b", "runtime": "docker", "image_url": "x", "warm": 2, "timeout_secs": 1});
        let (r, back) = round_trip(image.clone());
        assert_eq!(r.runnable.image().unwrap().warm, Some(2));
        assert_eq!(back, image);
        let wasm = json!({"id": "a", "runtime": "wasm", "module_sha256": "ab", "module_size": 3, "module_kind": "component", "timeout_secs": 1});
        assert_eq!(round_trip(wasm.clone()).1, wasm);
    }

    #[test]
    fn an_unknown_runtime_or_an_image_without_reference_is_refused() {
        let bad = json!({"id": "a", "runtime": "firecracker", "timeout_secs": 1});
        assert!(serde_json::from_value::<Record>(bad).is_err());
        let bad = json!({"id": "a", "runtime": "docker", "timeout_secs": 1});
        assert!(serde_json::from_value::<Record>(bad).is_err());
    }

    #[test]
    fn sources_name_the_image_or_the_digest() {
        let m = Runnable::Wasm(WasmModule {
            module_sha256: "0123456789abcdef".into(),
            ..WasmModule::default()
        });
        assert_eq!(m.source(), "sha256:0123456789ab");
        assert_eq!(Runnable::Image(ImageSpec::new("a:1")).source(), "a:1");
    }
}
