//! `storage.k8s.io/v1` resources.

use serde_json::json;

use super::{CreateStatus, ResourceStrategy};
use crate::printers::storage as p;

const STORAGE_V1: (&str, &str) = ("storage.k8s.io", "v1");

/// The storage resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![
        ResourceStrategy::new(STORAGE_V1, "CSIDriver", "csidrivers", false, &p::CSI_DRIVER),
        ResourceStrategy::new(STORAGE_V1, "CSINode", "csinodes", false, &p::CSI_NODE),
        ResourceStrategy::new(
            STORAGE_V1,
            "CSIStorageCapacity",
            "csistoragecapacities",
            true,
            &p::CSI_STORAGE_CAPACITY,
        ),
        ResourceStrategy::new(
            STORAGE_V1,
            "StorageClass",
            "storageclasses",
            false,
            &p::STORAGE_CLASS,
        )
        .short(&["sc"]),
        ResourceStrategy::new(
            STORAGE_V1,
            "VolumeAttachment",
            "volumeattachments",
            false,
            &p::VOLUME_ATTACHMENT,
        )
        .status(CreateStatus::Reset(|_| json!({"attached": false}))),
    ]
}
