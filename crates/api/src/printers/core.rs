//! Core (`v1`) kinds other than pods and events.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    age_cell, arr_at, col, container_cells, int_at, len_at, name, or, quantity, str_at, Printer,
    AGE, CONTAINERS, IMAGES, NAME,
};
use crate::selectors::labels::format_labels;

/// PodTemplates.
pub static POD_TEMPLATE: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Containers",
            "string",
            "Names of each container in the template.",
            0,
        ),
        col(
            "Images",
            "string",
            "Images referenced by each container in the template.",
            0,
        ),
        col(
            "Pod Labels",
            "string",
            "The labels for the pod template.",
            0,
        ),
    ],
    row: |obj, _| {
        let (names, images) = container_cells(arr_at(obj, "/template/spec/containers"));
        vec![
            name(obj).into(),
            names.into(),
            images.into(),
            format_labels(obj.pointer("/template/metadata/labels")).into(),
        ]
    },
};

/// ReplicationControllers.
pub static REPLICATION_CONTROLLER: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller", 0),
        col("Current", "integer", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller", 0),
        col("Ready", "integer", "The number of ready replicas for this replication controller.", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        col("Selector", "string", "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", 1),
    ],
    row: |obj, now| {
        let (names, images) = container_cells(arr_at(obj, "/spec/template/spec/containers"));
        vec![
            name(obj).into(),
            obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1).into(),
            int_at(obj, "/status/replicas").into(),
            int_at(obj, "/status/readyReplicas").into(),
            age_cell(obj, now),
            names.into(),
            images.into(),
            format_labels(obj.pointer("/spec/selector")).into(),
        ]
    },
};

/// Services.
pub static SERVICE: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP.", 0),
        col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly.", 0),
        col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.", 0),
        col("Port(s)", "string", "The list of ports that are exposed by this service.", 0),
        AGE,
        col("Selector", "string", "Route service traffic to pods with label keys and values matching this selector.", 1),
    ],
    row: service_row,
};

/// Upstream `loadBalancerStatusStringer`: sorted unique IPs/hostnames, clipped to 16 bytes
/// unless `wide`.
pub fn load_balancer_ingress(status: Option<&Value>, wide: bool) -> String {
    let mut set = std::collections::BTreeSet::new();
    for ing in status
        .and_then(|s| s.get("ingress"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ip = str_at(ing, "/ip");
        let host = str_at(ing, "/hostname");
        if !ip.is_empty() {
            set.insert(ip.to_string());
        } else if !host.is_empty() {
            set.insert(host.to_string());
        }
    }
    let r = set.into_iter().collect::<Vec<_>>().join(",");
    if !wide && r.len() > 16 {
        format!("{}...", &r[..13])
    } else {
        r
    }
}

/// Upstream `getServiceExternalIP` (the table is generated in wide mode).
fn service_external_ip(svc: &Value) -> String {
    let external: Vec<&str> = arr_at(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(svc.pointer("/status/loadBalancer"), true);
            if !external.is_empty() {
                let mut results: Vec<&str> = if lb.is_empty() {
                    vec![]
                } else {
                    lb.split(',').collect()
                };
                results.extend(external);
                return results.join(",");
            }
            if lb.is_empty() {
                "<pending>".into()
            } else {
                lb
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").into(),
        _ => "<unknown>".into(),
    }
}

/// Upstream `makePortString`: `80/TCP,443:30443/TCP`.
pub fn service_ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr_at(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "/port");
            let protocol = str_at(p, "/protocol");
            let node_port = int_at(p, "/nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    or(&pieces.join(","), "<none>")
}

fn service_row(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cluster_ip = arr_at(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    vec![
        name(svc).into(),
        str_at(svc, "/spec/type").into(),
        cluster_ip.into(),
        service_external_ip(svc).into(),
        service_ports(svc).into(),
        age_cell(svc, now),
        format_labels(svc.pointer("/spec/selector")).into(),
    ]
}

/// Endpoints.
pub static ENDPOINTS: Printer = Printer {
    columns: &[
        NAME,
        col("Endpoints", "string", "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.", 0),
        AGE,
    ],
    row: |obj, now| vec![name(obj).into(), format_endpoints(obj).into(), age_cell(obj, now)],
};

/// Upstream `formatEndpoints` with all ports: `ip:port` (up to 3) `+ N more...`.
pub fn format_endpoints(ep: &Value) -> String {
    let subsets = arr_at(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            // Headless services without ports list bare IPs.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, "/ip"), int_at(port, "/port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

/// Go's `net.JoinHostPort`: IPv6 hosts in brackets.
pub fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Nodes.
pub static NODE: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the node", 0),
        col("Roles", "string", "The roles of the node", 0),
        AGE,
        col("Version", "string", "Kubelet Version reported by the node.", 0),
        col("Internal-IP", "string", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses", 1),
        col("External-IP", "string", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses", 1),
        col("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", 1),
        col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
        col("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", 1),
    ],
    row: node_row,
};

/// The node STATUS cell: `Ready`, `NotReady`, `Unknown`, plus `,SchedulingDisabled`.
pub fn node_status(node: &Value) -> String {
    let mut status: Vec<String> = Vec::new();
    if let Some(c) = arr_at(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready")
    {
        status.push(if str_at(c, "/status") == "True" {
            "Ready".into()
        } else {
            "NotReady".into()
        });
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    status.join(",")
}

/// Upstream `findNodeRoles`: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role`.
pub fn node_roles(node: &Value) -> String {
    let mut roles = std::collections::BTreeSet::new();
    for (k, v) in node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" {
            let v = v.as_str().unwrap_or("");
            if !v.is_empty() {
                roles.insert(v.to_string());
            }
        }
    }
    or(&roles.into_iter().collect::<Vec<_>>().join(","), "<none>")
}

fn node_address(node: &Value, type_: &str) -> String {
    arr_at(node, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == type_)
        .map(|a| str_at(a, "/address").to_string())
        .unwrap_or_else(|| "<none>".into())
}

fn node_row(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(node).into(),
        node_status(node).into(),
        node_roles(node).into(),
        age_cell(node, now),
        str_at(node, "/status/nodeInfo/kubeletVersion").into(),
        node_address(node, "InternalIP").into(),
        node_address(node, "ExternalIP").into(),
        or(str_at(node, "/status/nodeInfo/osImage"), "<unknown>").into(),
        or(str_at(node, "/status/nodeInfo/kernelVersion"), "<unknown>").into(),
        or(
            str_at(node, "/status/nodeInfo/containerRuntimeVersion"),
            "<unknown>",
        )
        .into(),
    ]
}

/// Namespaces.
pub static NAMESPACE: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "The status of the namespace", 0),
        AGE,
    ],
    row: |obj, now| {
        vec![
            name(obj).into(),
            str_at(obj, "/status/phase").into(),
            age_cell(obj, now),
        ]
    },
};

/// Secrets.
pub static SECRET: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", 0),
        col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4", 0),
        AGE,
    ],
    row: |obj, now| {
        // `stringData` is folded into `data` on write, but count it too if still present.
        let mut keys: std::collections::BTreeSet<&String> = std::collections::BTreeSet::new();
        for p in ["/data", "/stringData"] {
            keys.extend(obj.pointer(p).and_then(Value::as_object).into_iter().flat_map(|m| m.keys()));
        }
        vec![
            name(obj).into(),
            str_at(obj, "/type").into(),
            (keys.len() as i64).into(),
            age_cell(obj, now),
        ]
    },
};

/// ServiceAccounts.
pub static SERVICE_ACCOUNT: Printer = Printer {
    columns: &[
        NAME,
        col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.", 0),
        AGE,
    ],
    row: |obj, now| vec![name(obj).into(), len_at(obj, "/secrets").into(), age_cell(obj, now)],
};

/// Upstream `GetAccessModesAsString`: `RWO,ROX,RWX,RWOP`.
pub fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    let mut out = Vec::new();
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(mode) {
            out.push(short);
        }
    }
    out.join(",")
}

/// The beta storage-class annotation wins over `spec.storageClassName`.
fn storage_class(obj: &Value) -> String {
    match obj
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .and_then(Value::as_str)
    {
        Some(c) => c.to_string(),
        None => str_at(obj, "/spec/storageClassName").to_string(),
    }
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// PersistentVolumes.
pub static PERSISTENT_VOLUME: Printer = Printer {
    columns: &[
        NAME,
        col("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity", 0),
        col("Access Modes", "string", "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes", 0),
        col("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming", 0),
        col("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase", 0),
        col("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding", 0),
        col("StorageClass", "string", "StorageClass of the pv", 0),
        col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv", 0),
        col("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.", 0),
        AGE,
        col("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.", 1),
    ],
    row: |pv, now| {
        let claim = match pv.pointer("/spec/claimRef") {
            Some(c) if c.is_object() => format!("{}/{}", str_at(c, "/namespace"), str_at(c, "/name")),
            _ => String::new(),
        };
        let phase = if deleting(pv) { "Terminating" } else { str_at(pv, "/status/phase") };
        vec![
            name(pv).into(),
            quantity(pv.pointer("/spec/capacity/storage")).into(),
            access_modes(arr_at(pv, "/spec/accessModes")).into(),
            str_at(pv, "/spec/persistentVolumeReclaimPolicy").into(),
            phase.into(),
            claim.into(),
            storage_class(pv).into(),
            or(str_at(pv, "/spec/volumeAttributesClassName"), "<unset>").into(),
            str_at(pv, "/status/reason").into(),
            age_cell(pv, now),
            or(str_at(pv, "/spec/volumeMode"), "<unset>").into(),
        ]
    },
};

/// PersistentVolumeClaims.
pub static PERSISTENT_VOLUME_CLAIM: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "phase represents the current phase of PersistentVolumeClaim.", 0),
        col("Volume", "string", "volumeName is the binding reference to the PersistentVolume backing this claim.", 0),
        col("Capacity", "string", "capacity represents the actual resources of the underlying volume.", 0),
        col("Access Modes", "string", "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1", 0),
        col("StorageClass", "string", "StorageClass of the pvc", 0),
        col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc", 0),
        AGE,
        col("VolumeMode", "string", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.", 1),
    ],
    row: |pvc, now| {
        let phase = if deleting(pvc) { "Terminating" } else { str_at(pvc, "/status/phase") };
        let volume = str_at(pvc, "/spec/volumeName");
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                quantity(pvc.pointer("/status/capacity/storage")),
                access_modes(arr_at(pvc, "/status/accessModes")),
            )
        };
        vec![
            name(pvc).into(),
            phase.into(),
            volume.into(),
            capacity.into(),
            modes.into(),
            storage_class(pvc).into(),
            or(str_at(pvc, "/spec/volumeAttributesClassName"), "<unset>").into(),
            age_cell(pvc, now),
            or(str_at(pvc, "/spec/volumeMode"), "<unset>").into(),
        ]
    },
};

/// ConfigMaps.
pub static CONFIG_MAP: Printer = Printer {
    columns: &[
        NAME,
        col("Data", "string", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.", 0),
        AGE,
    ],
    row: |obj, now| {
        let n = len_at(obj, "/data") + len_at(obj, "/binaryData");
        vec![name(obj).into(), n.into(), age_cell(obj, now)]
    },
};

/// ResourceQuotas.
pub static RESOURCE_QUOTA: Printer = Printer {
    columns: &[
        NAME,
        col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume.", 0),
        col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.", 0),
        AGE,
    ],
    row: |rq, now| {
        let hard = rq.pointer("/status/hard").and_then(Value::as_object);
        let mut resources: Vec<&String> = hard.into_iter().flat_map(|m| m.keys()).collect();
        resources.sort();
        let mut requests = Vec::new();
        let mut limits = Vec::new();
        for r in resources {
            let used = quantity(rq.pointer("/status/used").and_then(|u| u.get(r)));
            let hard = quantity(hard.and_then(|h| h.get(r)));
            let cell = format!("{r}: {used}/{hard}");
            if r.split('.').count() > 1 && r.split('.').next() == Some("limits") {
                limits.push(cell);
            } else {
                requests.push(cell);
            }
        }
        vec![name(rq).into(), requests.join(", ").into(), limits.join(", ").into(), age_cell(rq, now)]
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn service_cells() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}], "selector": {"app": "web"}}});
        let row = service_row(&svc, now());
        assert_eq!(row[1], "NodePort");
        assert_eq!(row[2], "10.96.0.10");
        assert_eq!(row[3], "<none>");
        assert_eq!(row[4], "80/TCP,443:30443/TCP");
        assert_eq!(row[6], "app=web");

        let lb = json!({"spec": {"type": "LoadBalancer", "ports": []}});
        assert_eq!(service_row(&lb, now())[3], "<pending>");
        assert_eq!(service_row(&lb, now())[4], "<none>");
        assert_eq!(service_row(&lb, now())[2], "<none>");
        let lb = json!({"spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]}, "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}});
        assert_eq!(service_row(&lb, now())[3], "5.6.7.8,1.2.3.4");
        let en = json!({"spec": {"type": "ExternalName", "externalName": "example.com"}});
        assert_eq!(service_row(&en, now())[3], "example.com");
    }

    #[test]
    fn node_cells() {
        let node = json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
        assert_eq!(node_status(&node), "Ready,SchedulingDisabled");
        assert_eq!(node_roles(&node), "control-plane,worker");
        let row = node_row(&node, now());
        assert_eq!(row[5], "10.0.0.1");
        assert_eq!(row[6], "<none>");
        assert_eq!(row[7], "<unknown>");
        assert_eq!(node_status(&json!({})), "Unknown");
        assert_eq!(
            node_status(
                &json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
            ),
            "NotReady"
        );
    }

    #[test]
    fn endpoints_cells() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(
            format_endpoints(&ep),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
        );
        assert_eq!(format_endpoints(&json!({})), "<none>");
        assert_eq!(
            format_endpoints(
                &json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]})
            ),
            "[fd00::1]:53"
        );
    }

    #[test]
    fn quota_and_pvc_cells() {
        let rq = json!({"status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi"}, "used": {"pods": "3"}}});
        let row = (RESOURCE_QUOTA.row)(&rq, now());
        assert_eq!(row[1], "pods: 3/10, requests.memory: 0/1Gi");
        assert_eq!(row[2], "limits.cpu: 0/2");
        let pvc = json!({"spec": {"volumeName": "pv1", "storageClassName": "std"}, "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
        let row = (PERSISTENT_VOLUME_CLAIM.row)(&pvc, now());
        assert_eq!(
            &row[1..7],
            &[
                json!("Bound"),
                json!("pv1"),
                json!("1Gi"),
                json!("RWO"),
                json!("std"),
                json!("<unset>")
            ]
        );
    }
}
