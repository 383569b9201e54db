//! `storage.k8s.io/v1` kinds.

use serde_json::Value;

use super::{age_cell, arr_at, col, len_at, name, quantity, str_at, Printer, AGE, NAME};

fn flag(obj: &Value, pointer: &str, default: bool) -> Value {
    obj.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(default)
        .into()
}

/// StorageClasses.
pub static STORAGE_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col("Provisioner", "string", "provisioner indicates the type of the provisioner.", 0),
        col("ReclaimPolicy", "string", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.", 0),
        col("VolumeBindingMode", "string", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.", 0),
        col("AllowVolumeExpansion", "string", "allowVolumeExpansion shows whether the storage class allow volume expand.", 0),
        AGE,
    ],
    row: |sc, now| {
        let annotation = |k: &str| sc.pointer("/metadata/annotations").and_then(|a| a.get(k)).and_then(Value::as_str);
        let is_default = annotation("storageclass.kubernetes.io/is-default-class") == Some("true")
            || annotation("storageclass.beta.kubernetes.io/is-default-class") == Some("true");
        let mut n = name(sc).to_string();
        if is_default {
            n.push_str(" (default)");
        }
        vec![
            n.into(),
            str_at(sc, "/provisioner").into(),
            sc.get("reclaimPolicy").and_then(Value::as_str).unwrap_or("Delete").into(),
            sc.get("volumeBindingMode").and_then(Value::as_str).unwrap_or("Immediate").into(),
            flag(sc, "/allowVolumeExpansion", false),
            age_cell(sc, now),
        ]
    },
};

/// VolumeAttachments.
pub static VOLUME_ATTACHMENT: Printer = Printer {
    columns: &[
        NAME,
        crate::Column { name: "Attacher", type_: "string", format: "name", description: "attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().", priority: 0 },
        col("PV", "string", "persistentVolumeName represents the name of the persistent volume to attach.", 0),
        col("Node", "string", "nodeName represents the node that the volume should be attached to.", 0),
        col("Attached", "boolean", "attached indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher.", 0),
        AGE,
    ],
    row: |va, now| {
        vec![
            name(va).into(),
            str_at(va, "/spec/attacher").into(),
            str_at(va, "/spec/source/persistentVolumeName").into(),
            str_at(va, "/spec/nodeName").into(),
            flag(va, "/status/attached", false),
            age_cell(va, now),
        ]
    },
};

/// CSIDrivers.
pub static CSI_DRIVER: Printer = Printer {
    columns: &[
        NAME,
        col("AttachRequired", "boolean", "attachRequired indicates this CSI volume driver requires an attach operation (because it implements the CSI ControllerPublishVolume() method), and that the Kubernetes attach detach controller should call the attach volume interface which checks the volumeattachment status and waits until the volume is attached before proceeding to mounting.", 0),
        col("PodInfoOnMount", "boolean", "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations, if set to true.", 0),
        col("StorageCapacity", "boolean", "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information, if set to true.", 0),
        col("TokenRequests", "string", "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.", 0),
        col("RequiresRepublish", "boolean", "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume.", 0),
        col("Modes", "string", "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports.", 0),
        AGE,
    ],
    row: |d, now| {
        let modes: Vec<&str> = arr_at(d, "/spec/volumeLifecycleModes").iter().filter_map(Value::as_str).collect();
        let token_requests = match d.pointer("/spec/tokenRequests").and_then(Value::as_array) {
            Some(t) => t.iter().map(|r| str_at(r, "/audience")).collect::<Vec<_>>().join(","),
            None => "<unset>".into(),
        };
        vec![
            name(d).into(),
            flag(d, "/spec/attachRequired", true),
            flag(d, "/spec/podInfoOnMount", false),
            flag(d, "/spec/storageCapacity", false),
            token_requests.into(),
            flag(d, "/spec/requiresRepublish", false),
            super::or(&modes.join(","), "<none>").into(),
            age_cell(d, now),
        ]
    },
};

/// CSINodes.
pub static CSI_NODE: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Drivers",
            "integer",
            "Drivers indicates the number of CSI drivers registered on the node",
            0,
        ),
        AGE,
    ],
    row: |n, now| {
        vec![
            name(n).into(),
            len_at(n, "/spec/drivers").into(),
            age_cell(n, now),
        ]
    },
};

/// CSIStorageCapacities.
pub static CSI_STORAGE_CAPACITY: Printer = Printer {
    columns: &[
        NAME,
        col("StorageClassName", "string", "storageClassName represents the name of the StorageClass that the reported capacity applies to. It must meet the same requirements as the name of a StorageClass object (non-empty, DNS subdomain). If that object no longer exists, the CSIStorageCapacity object is obsolete and should be removed by its creator. This field is immutable.", 0),
        col("Capacity", "string", "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.\n\nThe semantic is currently (CSI spec 1.2) defined as: The available capacity, in bytes, of the storage that can be used to provision volumes. If not set, that information is currently unavailable.", 0),
    ],
    row: |c, _| {
        let capacity = match c.get("capacity") {
            Some(v) if !v.is_null() => quantity(Some(v)),
            _ => "<unset>".into(),
        };
        vec![name(c).into(), str_at(c, "/storageClassName").into(), capacity.into()]
    },
};
