//! Offline images: every tarball in a directory (`DATA/agent/images/`, like k3s's
//! air-gap images) is imported into containerd's `k8s.io` namespace at start, so pods
//! run with no registry. `ctr images import` does the work; we then wait until the CRI
//! plugin sees each image (it learns of them from containerd's events).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::cri::CriRuntime;
use crate::runtime::Runtime;

/// The tarballs (`*.tar`, `*.tar.gz`, `*.tgz`) in `dir`, sorted; none if it is missing.
pub fn tarballs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_file()
            && [".tar", ".tar.gz", ".tgz"]
                .iter()
                .any(|ext| name.ends_with(ext))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Imports every tarball in `dir` with `ctr` and returns the image references loaded.
pub async fn import_dir(ctr: &Path, socket: &Path, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut refs = Vec::new();
    for tarball in tarballs(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let output = tokio::process::Command::new(ctr)
            .arg("--address")
            .arg(socket)
            .args(["--namespace", "k8s.io", "images", "import"])
            .arg(&tarball)
            .output()
            .await
            .with_context(|| format!("cannot run {}", ctr.display()))?;
        if !output.status.success() {
            anyhow::bail!(
                "cannot import {}: {}",
                tarball.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        refs.extend(imported_refs(&String::from_utf8_lossy(&output.stdout)));
    }
    let runtime = CriRuntime::connect(socket)?;
    for image in &refs {
        wait_visible(&runtime, image).await?;
    }
    Ok(refs)
}

/// The references `ctr images import` reports (`unpacking REF (sha256:…)...done`).
fn imported_refs(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| line.strip_prefix("unpacking "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

async fn wait_visible(runtime: &CriRuntime, image: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if runtime.image_status(image).await?.is_some() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("image {image} was imported but the CRI service does not list it");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_read_from_ctr_output() {
        let out = "unpacking docker.io/library/busybox:latest (sha256:ab12)...done\n\
                   unpacking k8rs.local/pause:3.10 (sha256:cd34)...done\n";
        assert_eq!(
            imported_refs(out),
            ["docker.io/library/busybox:latest", "k8rs.local/pause:3.10"]
        );
        assert!(imported_refs("").is_empty());
    }

    #[test]
    fn only_tarballs_are_imported_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.tar", "a.tar.gz", "notes.txt", "c.tgz"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.tar")).unwrap();
        let names: Vec<_> = tarballs(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.tar.gz", "b.tar", "c.tgz"]);
        assert!(tarballs(&dir.path().join("missing")).unwrap().is_empty());
    }
}
