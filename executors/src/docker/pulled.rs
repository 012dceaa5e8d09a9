//! The images the platform pulled, kept in a file (one canonical reference a line) so
//! that they can be removed once no function refers to them. Images the operator
//! provided (present before any pull of the platform's) are never in this set, so
//! they are never removed.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use bollard::Docker;
use bollard::query_parameters::RemoveImageOptionsBuilder;
use faas_runtime::Result;

use super::errors::{self, Answer};
use super::reference::ImageRef;

/// The set of pulled images and where it is kept (`None`: this process only).
#[derive(Debug, Default)]
pub(crate) struct PulledImages {
    file: Option<PathBuf>,
    set: Mutex<BTreeSet<String>>,
}

impl PulledImages {
    /// Reads the set kept in `file` (absent: empty).
    pub(crate) async fn load(file: Option<PathBuf>) -> Self {
        let mut set = BTreeSet::new();
        if let Some(path) = &file {
            match tokio::fs::read_to_string(path).await {
                Ok(text) => set.extend(text.lines().filter(|l| !l.is_empty()).map(String::from)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "cannot read the list of pulled images; starting empty"
                ),
            }
        }
        PulledImages {
            file,
            set: Mutex::new(set),
        }
    }

    /// Notes that the platform pulled `image`.
    pub(crate) async fn record(&self, image: &ImageRef) {
        let added = self.lock().insert(image.canonical().to_string());
        if added {
            self.persist().await;
        }
    }

    /// True when no pulled image is known.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The images pulled and not removed yet.
    fn snapshot(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    async fn forget(&self, images: &[String]) {
        if images.is_empty() {
            return;
        }
        {
            let mut set = self.lock();
            for image in images {
                set.remove(image);
            }
        }
        self.persist().await;
    }

    async fn persist(&self) {
        let Some(path) = &self.file else { return };
        let text: String = self.snapshot().iter().map(|i| format!("{i}\n")).collect();
        let tmp = path.with_extension("tmp");
        let written = async {
            tokio::fs::write(&tmp, text).await?;
            tokio::fs::rename(&tmp, path).await
        };
        if let Err(e) = written.await {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "cannot save the list of pulled images"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.set.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes every pulled image whose canonical reference is not in `referenced`;
/// an image a container still uses stays for the next call. Returns how many went.
pub(crate) async fn remove_unused(
    docker: &Docker,
    pulled: &PulledImages,
    referenced: &HashSet<String>,
) -> Result<usize> {
    let (mut gone, mut removed) = (Vec::new(), 0);
    for image in pulled.snapshot() {
        if referenced.contains(&image) {
            continue;
        }
        let options = RemoveImageOptionsBuilder::default().build();
        match docker.remove_image(&image, Some(options), None).await {
            Ok(_) => {
                tracing::info!(image = %image, "removed an image no function uses");
                gone.push(image);
                removed += 1;
            }
            Err(err) if errors::is_not_found(&err) => gone.push(image),
            Err(err) => match errors::answer(err) {
                // A container (running or not) still uses it: next time.
                Answer::Refused { status: 409, .. } => {}
                Answer::Unreachable(message) => {
                    pulled.forget(&gone).await;
                    return Err(errors::from_answer(
                        "removing an image",
                        Answer::Unreachable(message),
                    ));
                }
                other => {
                    tracing::warn!(image = %image, answer = ?other, "removing an image failed")
                }
            },
        }
    }
    pulled.forget(&gone).await;
    Ok(removed)
}
