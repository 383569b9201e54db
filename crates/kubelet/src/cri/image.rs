//! Images: `ImageStatus`, `PullImage`, `ListImages`, `RemoveImage`.

use super::{error, pb, request, status_text, CriRuntime};
use crate::runtime::{Image, Result, RuntimeError};

impl CriRuntime {
    pub(super) async fn image(&self, image: &str) -> Result<Option<Image>> {
        let response = self
            .image_client()
            .image_status(request(pb::ImageStatusRequest {
                image: Some(spec(image)),
                verbose: false,
            }))
            .await
            .map_err(error)?
            .into_inner();
        Ok(response.image.map(from_cri))
    }

    /// Pulls `image`; any failure is an `ErrImagePull` for the pod.
    pub(super) async fn pull(&self, image: &str) -> Result<String> {
        // Pulls may take long; no deadline beyond the runtime's own.
        let response = self
            .image_client()
            .pull_image(tonic::Request::new(pb::PullImageRequest {
                image: Some(spec(image)),
                auth: None,
                sandbox_config: None,
            }))
            .await
            .map_err(|status| RuntimeError::ImagePull(status_text(&status)))?;
        Ok(response.into_inner().image_ref)
    }

    pub(super) async fn images(&self) -> Result<Vec<Image>> {
        let response = self
            .image_client()
            .list_images(request(pb::ListImagesRequest { filter: None }))
            .await
            .map_err(error)?
            .into_inner();
        Ok(response.images.into_iter().map(from_cri).collect())
    }

    pub(super) async fn delete_image(&self, image: &str) -> Result<()> {
        match self
            .image_client()
            .remove_image(request(pb::RemoveImageRequest {
                image: Some(spec(image)),
            }))
            .await
            .map_err(error)
        {
            Ok(_) | Err(RuntimeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn spec(image: &str) -> pb::ImageSpec {
    pb::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}

/// CRI's image as ours.
pub fn from_cri(image: pb::Image) -> Image {
    Image {
        id: image.id,
        repo_tags: image.repo_tags,
        repo_digests: image.repo_digests,
        size: image.size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_keeps_id_tags_digests_and_size() {
        let image = from_cri(pb::Image {
            id: "sha256:1".into(),
            repo_tags: vec!["docker.io/library/busybox:latest".into()],
            repo_digests: vec!["docker.io/library/busybox@sha256:2".into()],
            size: 1234,
            ..Default::default()
        });
        assert_eq!(image.id, "sha256:1");
        assert_eq!(image.repo_tags, ["docker.io/library/busybox:latest"]);
        assert_eq!(image.repo_digests.len(), 1);
        assert_eq!(image.size, 1234);
    }
}
