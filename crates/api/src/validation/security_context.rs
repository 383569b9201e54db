//! Pod and container security contexts (`pkg/apis/core/validation/validation.go`:
//! `validatePodSpecSecurityContext`, `ValidateSecurityContext`, seccomp and AppArmor profiles).

use k8s_openapi::api::core::v1::{
    AppArmorProfile, PodSecurityContext, SeccompProfile, SecurityContext,
};
use serde_json::Value;

use super::names::inclusive_range_error;
use super::path::FieldPath;
use crate::FieldError;

/// Linux user and group IDs: `IsValidUserID` / `IsValidGroupID`.
fn validate_id(id: Option<i64>, path: FieldPath) -> Option<FieldError> {
    id.filter(|id| !(0..=i32::MAX as i64).contains(id))
        .map(|id| FieldError::invalid(path, id, inclusive_range_error(0, i32::MAX as i64)))
}

/// `validatePodSpecSecurityContext` (sysctls and Windows options are not checked here).
/// `hostPID` and `shareProcessNamespace` live in the v1 pod spec but in upstream's internal
/// security context, hence the paths under `securityContext`.
pub fn validate_pod_security_context(
    sc: &PodSecurityContext,
    host_pid: bool,
    share_process_namespace: Option<bool>,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(validate_id(sc.fs_group, path.child("fsGroup")));
    errs.extend(validate_id(sc.run_as_user, path.child("runAsUser")));
    errs.extend(validate_id(sc.run_as_group, path.child("runAsGroup")));
    for (i, gid) in sc.supplemental_groups.iter().flatten().enumerate() {
        errs.extend(validate_id(
            Some(*gid),
            path.child("supplementalGroups").index(i),
        ));
    }
    if host_pid && share_process_namespace == Some(true) {
        errs.push(FieldError::invalid(
            path.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    if let Some(p) = sc.fs_group_change_policy.as_deref() {
        if !matches!(p, "Always" | "OnRootMismatch") {
            errs.push(FieldError::not_supported(
                path.child("fsGroupChangePolicy"),
                p,
                &["Always", "OnRootMismatch"],
            ));
        }
    }
    if let Some(sp) = &sc.seccomp_profile {
        errs.extend(validate_seccomp_profile(sp, &path.child("seccompProfile")));
    }
    if let Some(ap) = &sc.app_armor_profile {
        errs.extend(validate_app_armor_profile(
            ap,
            &path.child("appArmorProfile"),
        ));
    }
    if let Some(p) = sc.supplemental_groups_policy.as_deref() {
        if !matches!(p, "Merge" | "Strict") {
            errs.push(FieldError::not_supported(
                path.child("supplementalGroupsPolicy"),
                p,
                &["Merge", "Strict"],
            ));
        }
    }
    if let Some(p) = sc.se_linux_change_policy.as_deref() {
        if !matches!(p, "MountOption" | "Recursive") {
            errs.push(FieldError::not_supported(
                path.child("seLinuxChangePolicy"),
                p,
                &["MountOption", "Recursive"],
            ));
        }
    }
    errs
}

/// `ValidateSecurityContext` for one container. `host_users` is the pod's `hostUsers`
/// (default true). Privileged containers are allowed, as with `--allow-privileged=true`.
pub fn validate_container_security_context(
    sc: &SecurityContext,
    host_users: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(validate_id(sc.run_as_user, path.child("runAsUser")));
    errs.extend(validate_id(sc.run_as_group, path.child("runAsGroup")));
    if let Some(pm) = sc.proc_mount.as_deref() {
        let pp = path.child("procMount");
        if !matches!(pm, "Default" | "Unmasked") {
            errs.push(FieldError::not_supported(&pp, pm, &["Default", "Unmasked"]));
        }
        if host_users && pm == "Unmasked" {
            errs.push(FieldError::invalid(
                &pp,
                pm,
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    if let Some(sp) = &sc.seccomp_profile {
        errs.extend(validate_seccomp_profile(sp, &path.child("seccompProfile")));
    }
    if sc.allow_privilege_escalation == Some(false) {
        // Upstream prints the whole internal struct (with pointer addresses) as the value.
        const SHOWN: &str = "&core.SecurityContext{…}";
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid_repr(
                path,
                SHOWN,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let added = sc.capabilities.as_ref().and_then(|c| c.add.as_deref());
        for cap in added.unwrap_or_default() {
            if cap == "CAP_SYS_ADMIN" {
                errs.push(FieldError::invalid_repr(
                    path,
                    SHOWN,
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                ));
            }
        }
    }
    if let Some(ap) = &sc.app_armor_profile {
        errs.extend(validate_app_armor_profile(
            ap,
            &path.child("appArmorProfile"),
        ));
    }
    errs
}

/// `validateSeccompProfileField`.
fn validate_seccomp_profile(sp: &SeccompProfile, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match sp.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    let lp = path.child("localhostProfile");
    match (sp.type_.as_str(), sp.localhost_profile.as_deref()) {
        ("Localhost", None) => errs.push(FieldError::required(
            lp,
            "must be set when seccomp type is Localhost",
        )),
        ("Localhost", Some(p)) => {
            if p.starts_with('/') {
                errs.push(FieldError::invalid(&lp, p, "must be a relative path"));
            }
            if p.split('/').any(|seg| seg == "..") {
                errs.push(FieldError::invalid(&lp, p, "must not contain '..'"));
            }
        }
        (_, Some(p)) => errs.push(FieldError::invalid_repr(
            lp,
            format!(
                "core.SeccompProfile{{Type:{:?}, LocalhostProfile:(*string)({p:?})}}",
                sp.type_
            ),
            "can only be set when seccomp type is Localhost",
        )),
        (_, None) => {}
    }
    errs
}

/// `ValidateAppArmorProfileField`.
fn validate_app_armor_profile(p: &AppArmorProfile, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lp = path.child("localhostProfile");
    match p.type_.as_str() {
        "Localhost" => match p.localhost_profile.as_deref() {
            None => errs.push(FieldError::required(
                lp,
                "must be set when AppArmor type is Localhost",
            )),
            Some(profile) => {
                let trimmed = profile.trim();
                if trimmed != profile {
                    errs.push(FieldError::invalid(
                        &lp,
                        profile,
                        "must not be padded with whitespace",
                    ));
                } else if trimmed.is_empty() {
                    errs.push(FieldError::required(
                        &lp,
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                const MAX_LOCALHOST_PROFILE_LENGTH: usize = 4095; // PATH_MAX - 1
                if profile.len() > MAX_LOCALHOST_PROFILE_LENGTH {
                    errs.push(FieldError::too_long(
                        &lp,
                        Value::Null,
                        MAX_LOCALHOST_PROFILE_LENGTH,
                    ));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(profile) = p.localhost_profile.as_deref() {
                errs.push(FieldError::invalid(
                    lp,
                    profile,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod_sc(v: Value, host_pid: bool) -> Vec<String> {
        let sc: PodSecurityContext = serde_json::from_value(v).unwrap();
        validate_pod_security_context(
            &sc,
            host_pid,
            Some(true),
            &FieldPath::new("spec.securityContext"),
        )
        .iter()
        .map(|e| e.to_string())
        .collect()
    }

    fn container_sc(v: Value, host_users: bool) -> Vec<String> {
        let sc: SecurityContext = serde_json::from_value(v).unwrap();
        validate_container_security_context(
            &sc,
            host_users,
            &FieldPath::new("spec.containers[0].securityContext"),
        )
        .iter()
        .map(|e| e.to_string())
        .collect()
    }

    #[test]
    fn valid_security_contexts_pass() {
        assert!(pod_sc(
            json!({"runAsUser": 1000, "runAsGroup": 0, "fsGroup": 2000, "supplementalGroups": [1, 2],
                   "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"},
                   "appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-profile"}}),
            false
        )
        .is_empty());
        assert!(container_sc(
            json!({"privileged": true, "allowPrivilegeEscalation": true, "runAsNonRoot": true,
                   "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                   "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}}),
            true
        )
        .is_empty());
    }

    #[test]
    fn pod_security_context_errors_match_upstream() {
        let range = "must be between 0 and 2147483647, inclusive";
        assert_eq!(
            pod_sc(
                json!({"runAsUser": -1, "runAsGroup": -1, "fsGroup": -1, "supplementalGroups": [-1]}),
                false
            ),
            [
                format!("spec.securityContext.fsGroup: Invalid value: -1: {range}"),
                format!("spec.securityContext.runAsUser: Invalid value: -1: {range}"),
                format!("spec.securityContext.runAsGroup: Invalid value: -1: {range}"),
                format!("spec.securityContext.supplementalGroups[0]: Invalid value: -1: {range}"),
            ]
        );
        assert_eq!(
            pod_sc(json!({}), true),
            ["spec.securityContext.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"]
        );
        assert_eq!(
            pod_sc(json!({"fsGroupChangePolicy": "Sometimes"}), false),
            ["spec.securityContext.fsGroupChangePolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnRootMismatch\""]
        );
        assert_eq!(
            pod_sc(json!({"seccompProfile": {"type": "Localhost"}}), false),
            ["spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost"]
        );
        assert_eq!(
            pod_sc(json!({"seccompProfile": {"type": ""}}), false),
            ["spec.securityContext.seccompProfile.type: Required value: type is required when seccompProfile is set"]
        );
        assert_eq!(
            pod_sc(json!({"seccompProfile": {"type": "Foo"}}), false),
            ["spec.securityContext.seccompProfile.type: Unsupported value: \"Foo\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""]
        );
        assert_eq!(
            pod_sc(json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": " p "}}), false),
            ["spec.securityContext.appArmorProfile.localhostProfile: Invalid value: \" p \": must not be padded with whitespace"]
        );
        assert_eq!(
            pod_sc(json!({"appArmorProfile": {"type": "RuntimeDefault", "localhostProfile": "p"}}), false),
            ["spec.securityContext.appArmorProfile.localhostProfile: Invalid value: \"p\": can only be set when AppArmor type is Localhost"]
        );
        assert_eq!(
            pod_sc(json!({"appArmorProfile": {"type": ""}}), false),
            ["spec.securityContext.appArmorProfile.type: Required value: type is required when appArmorProfile is set"]
        );
    }

    #[test]
    fn container_security_context_errors_match_upstream() {
        let p = "spec.containers[0].securityContext";
        assert_eq!(
            container_sc(json!({"runAsUser": -1}), true),
            [format!(
                "{p}.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive"
            )]
        );
        assert_eq!(
            container_sc(json!({"allowPrivilegeEscalation": false, "privileged": true}), true),
            [format!("{p}: Invalid value: &core.SecurityContext{{…}}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true")]
        );
        assert_eq!(
            container_sc(json!({"allowPrivilegeEscalation": false, "capabilities": {"add": ["CAP_SYS_ADMIN"]}}), true),
            [format!("{p}: Invalid value: &core.SecurityContext{{…}}: cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")]
        );
        assert_eq!(
            container_sc(json!({"procMount": "Unmasked"}), true),
            [format!("{p}.procMount: Invalid value: \"Unmasked\": `hostUsers` must be false to use `Unmasked`")]
        );
        assert!(container_sc(json!({"procMount": "Unmasked"}), false).is_empty());
        assert_eq!(
            container_sc(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "../etc/x"}}), true),
            [format!("{p}.seccompProfile.localhostProfile: Invalid value: \"../etc/x\": must not contain '..'")]
        );
    }
}
