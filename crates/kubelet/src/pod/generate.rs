//! The parts of upstream's `generateContainerConfig` that need the node: the resolved
//! environment, `$(VAR)`-expanded command and args, and (on real nodes, which have a
//! volume manager) the mounts, `/etc/hosts` and the termination-message file. A failure
//! is the container's `CreateContainerConfigError` message.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::env::{expand_command_and_args, make_environment_variables, EnvInputs};
use super::fieldpath::PodRuntimeFacts;
use super::mounts;
use crate::node::NodeContext;
use crate::runtime::{ContainerConfig, SandboxConfig};
use crate::volume::ObjectSource;

/// Completes `config` (from [`super::config::container_config`]) for `container`;
/// returns the warnings to record as `InvalidEnvironmentVariableNames` events.
pub fn complete_container_config(
    node: &NodeContext,
    pod: &Pod,
    container: &Container,
    pod_ips: &[String],
    sandbox: &SandboxConfig,
    config: &mut ContainerConfig,
) -> Result<Vec<String>, String> {
    let volumes = node.volumes.as_deref();
    let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
    let host_ips = vec![node.host_ip.clone()];
    let facts = PodRuntimeFacts {
        // Host-network pods have the node's addresses (the sandbox reports none).
        pod_ips: if host_network && pod_ips.is_empty() {
            host_ips.clone()
        } else {
            pod_ips.to_vec()
        },
        host_ips,
    };
    let no_allocatable = BTreeMap::new();
    let env = make_environment_variables(&EnvInputs {
        pod,
        container,
        facts: &facts,
        allocatable: volumes.map_or(&no_allocatable, |v| v.allocatable()),
        sources: volumes.map(|v| v.sources() as &dyn ObjectSource),
    })?;
    let (command, args) = expand_command_and_args(&config.command, &config.args, &env.vars);
    config.command = command;
    config.args = args;
    config.envs = env.vars;

    let Some(volumes) = volumes else {
        return Ok(env.invalid_names);
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let pod_dir = volumes.pod_dir(&uid);
    let hosts = if facts.pod_ips.is_empty() {
        None
    } else {
        Some(mounts::ensure_hosts_file(&pod_dir, pod, &facts.pod_ips)?)
    };
    config.mounts = mounts::make_mounts(
        container,
        &volumes.mounted(&uid),
        &config.envs,
        hosts.as_deref(),
    )?;

    let message_path = container
        .termination_message_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/dev/termination-log".into());
    let file = mounts::termination_log_file(&pod_dir, &container.name)?;
    config.mounts.push(crate::runtime::Mount {
        container_path: message_path,
        host_path: file.to_string_lossy().into_owned(),
        readonly: false,
    });
    config.annotations.insert(
        mounts::TERMINATION_HOST_PATH.into(),
        file.to_string_lossy().into_owned(),
    );
    config.annotations.insert(
        mounts::TERMINATION_POLICY.into(),
        container
            .termination_message_policy
            .clone()
            .unwrap_or_else(|| "File".into()),
    );
    config.annotations.insert(
        mounts::LOG_PATH.into(),
        format!("{}/{}", sandbox.log_directory, config.log_path),
    );
    Ok(env.invalid_names)
}
