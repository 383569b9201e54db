//! `storage.k8s.io/v1` defaults.

use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass, VolumeAttachment};

pub(super) fn storage_class(sc: &mut StorageClass) {
    sc.reclaim_policy.get_or_insert_with(|| "Delete".into());
    sc.volume_binding_mode
        .get_or_insert_with(|| "Immediate".into());
}

pub(super) fn csi_driver(d: &mut CSIDriver) {
    let s = &mut d.spec;
    s.attach_required.get_or_insert(true);
    s.pod_info_on_mount.get_or_insert(false);
    s.storage_capacity.get_or_insert(false);
    s.fs_group_policy
        .get_or_insert_with(|| "ReadWriteOnceWithFSType".into());
    if s.volume_lifecycle_modes
        .as_ref()
        .is_none_or(|m| m.is_empty())
    {
        s.volume_lifecycle_modes = Some(vec!["Persistent".into()]);
    }
    s.requires_republish.get_or_insert(false);
    s.se_linux_mount.get_or_insert(false);
}

/// Inline volume specs get the volume sources' defaults.
pub(super) fn volume_attachment(va: &mut VolumeAttachment) {
    let inline = va.spec.source.inline_volume_spec.as_mut();
    if let Some(h) = inline.and_then(|s| s.host_path.as_mut()) {
        h.type_.get_or_insert_with(String::new);
    }
}
