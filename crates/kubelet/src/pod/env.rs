//! A container's environment (upstream `kubelet_pods.go` `makeEnvironmentVariables` and
//! `getServiceEnvVarMap`, `pkg/kubelet/envvars`): `envFrom` ConfigMaps and Secrets (with
//! prefixes), then `env` in order (literal values with `$(VAR)` expansion, fieldRef,
//! resourceFieldRef, configMapKeyRef, secretKeyRef), then the Services' variables for
//! names not already set.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod, Service};

use super::expansion::expand;
use super::fieldpath::{pod_field_value, resource_field_value, PodRuntimeFacts};
use crate::volume::ObjectSource;

/// What the environment is built from.
pub struct EnvInputs<'a> {
    /// The pod.
    pub pod: &'a Pod,
    /// The container.
    pub container: &'a Container,
    /// Pod and host IPs.
    pub facts: &'a PodRuntimeFacts,
    /// The node's allocatable resources (unset limits read as these).
    pub allocatable: &'a BTreeMap<String, String>,
    /// ConfigMaps, Secrets and Services; `None` on hollow nodes, which resolve only what
    /// the pod itself holds.
    pub sources: Option<&'a dyn ObjectSource>,
}

/// The environment, and the warnings upstream records as events.
#[derive(Debug, Default)]
pub struct Environment {
    /// Name/value pairs in a stable order.
    pub vars: Vec<(String, String)>,
    /// `InvalidEnvironmentVariableNames` event messages.
    pub invalid_names: Vec<String>,
}

/// An insertion-ordered map: upstream builds a Go map (unordered); keeping first-set order
/// makes the runtime's environment stable between restarts.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
}

/// Upstream's relaxed `IsEnvVarName` (the 1.32+ default): printable ASCII without `=`.
fn is_env_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

/// `my-svc` → `MY_SVC`.
fn env_name(service: &str) -> String {
    service.replace('-', "_").to_uppercase()
}

/// Upstream's `envvars.FromServices`: `<NAME>_SERVICE_HOST`, `_SERVICE_PORT`,
/// `_SERVICE_PORT_<PORT>` and the Docker-link variables.
pub fn service_env(services: &[&Service]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let ports = spec.ports.clone().unwrap_or_default();
        if ip.is_empty() || ip == "None" || ports.is_empty() {
            continue;
        }
        let prefix = env_name(svc.metadata.name.as_deref().unwrap_or(""));
        out.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        out.push((format!("{prefix}_SERVICE_PORT"), ports[0].port.to_string()));
        for p in &ports {
            if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{prefix}_SERVICE_PORT_{}", env_name(name)),
                    p.port.to_string(),
                ));
            }
        }
        for (i, p) in ports.iter().enumerate() {
            let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let lower = protocol.to_lowercase();
            let url = format!("{lower}://{ip}:{}", p.port);
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, protocol.to_uppercase());
            out.push((port_prefix.clone(), url));
            out.push((format!("{port_prefix}_PROTO"), lower));
            out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
            out.push((format!("{port_prefix}_ADDR"), ip.clone()));
        }
    }
    out
}

/// Upstream's `getServiceEnvVarMap`: the `kubernetes` Service of `default` always, the
/// namespace's Services when `enableServiceLinks` (default true).
fn service_env_map(pod: &Pod, sources: &dyn ObjectSource) -> OrderedEnv {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let all = sources.services();
    let mut chosen: BTreeMap<String, &Service> = BTreeMap::new();
    for svc in &all {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        if ns == "default" && name == "kubernetes" {
            chosen.entry(name).or_insert(svc);
        } else if ns == namespace && links {
            chosen.insert(name, svc);
        }
    }
    let mut env = OrderedEnv::default();
    for (k, v) in service_env(&chosen.into_values().collect::<Vec<_>>()) {
        env.set(k, v);
    }
    env
}

/// Upstream's `makeEnvironmentVariables`. Errors carry upstream's messages and become
/// the container's `CreateContainerConfigError`.
pub fn make_environment_variables(inputs: &EnvInputs) -> Result<Environment, String> {
    let pod = inputs.pod;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let services = match inputs.sources {
        Some(s) => service_env_map(pod, s),
        None => OrderedEnv::default(),
    };
    let mut env = OrderedEnv::default();
    let mut result = Environment::default();

    for from in inputs.container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let Some(sources) = inputs.sources else {
            continue;
        };
        let (kind, name, data): (&str, String, Vec<(String, String)>) =
            if let Some(r) = &from.config_map_ref {
                match sources.config_map(namespace, &r.name) {
                    Ok(cm) => (
                        "configMap",
                        r.name.clone(),
                        cm.data.clone().unwrap_or_default().into_iter().collect(),
                    ),
                    Err(_) if r.optional == Some(true) => continue,
                    Err(e) => return Err(e.to_string()),
                }
            } else if let Some(r) = &from.secret_ref {
                match sources.secret(namespace, &r.name) {
                    Ok(s) => (
                        "secret",
                        r.name.clone(),
                        s.data
                            .clone()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect(),
                    ),
                    Err(_) if r.optional == Some(true) => continue,
                    Err(e) => return Err(e.to_string()),
                }
            } else {
                continue;
            };
        let mut invalid = Vec::new();
        for (k, v) in data {
            let key = format!("{prefix}{k}");
            if !is_env_var_name(&key) {
                invalid.push(key);
                continue;
            }
            env.set(key, v);
        }
        if !invalid.is_empty() {
            invalid.sort();
            result.invalid_names.push(format!(
                "Keys [{}] from the EnvFrom {kind} {namespace}/{name} were skipped since they are considered invalid environment variable names.",
                invalid.join(", ")
            ));
        }
    }

    for var in inputs.container.env.iter().flatten() {
        let value = var.value.clone().unwrap_or_default();
        let value = if !value.is_empty() {
            let mapping = |name: &str| {
                env.get(name)
                    .or_else(|| services.get(name))
                    .map(str::to_string)
            };
            expand(&value, &mapping)
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                pod_field_value(pod, inputs.facts, &f.field_path)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_field_value(r, pod, inputs.container, inputs.allocatable)?
            } else if let Some(r) = &from.config_map_key_ref {
                let Some(sources) = inputs.sources else {
                    continue;
                };
                let optional = r.optional == Some(true);
                let cm = match sources.config_map(namespace, &r.name) {
                    Ok(cm) => cm,
                    Err(_) if optional => continue,
                    Err(e) => return Err(e.to_string()),
                };
                match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(format!(
                            "couldn't find key {} in ConfigMap {namespace}/{}",
                            r.key, r.name
                        ))
                    }
                }
            } else if let Some(r) = &from.secret_key_ref {
                let Some(sources) = inputs.sources else {
                    continue;
                };
                let optional = r.optional == Some(true);
                let secret = match sources.secret(namespace, &r.name) {
                    Ok(s) => s,
                    Err(_) if optional => continue,
                    Err(e) => return Err(e.to_string()),
                };
                match secret.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(format!(
                            "couldn't find key {} in Secret {namespace}/{}",
                            r.key, r.name
                        ))
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    for (k, v) in services.vars {
        if env.get(&k).is_none() {
            env.set(k, v);
        }
    }
    result.vars = env.vars;
    Ok(result)
}

/// Upstream's `ExpandContainerCommandAndArgs`: `$(VAR)` in command and args from the
/// container's final environment.
pub fn expand_command_and_args(
    command: &[String],
    args: &[String],
    vars: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let map: HashMap<&str, &str> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mapping = |name: &str| map.get(name).map(|v| v.to_string());
    (
        command.iter().map(|c| expand(c, &mapping)).collect(),
        args.iter().map(|a| expand(a, &mapping)).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::sources::StaticSource;
    use serde_json::json;

    fn source() -> StaticSource {
        StaticSource {
            config_maps: vec![serde_json::from_value(json!({
                "metadata": {"name": "cfg", "namespace": "ns"},
                "data": {"color": "blue", "size": "L", "bad=key": "x"}
            }))
            .unwrap()],
            secrets: vec![serde_json::from_value(json!({
                "metadata": {"name": "sec", "namespace": "ns"},
                "data": {"password": "aHVudGVyMg=="}
            }))
            .unwrap()],
            services: vec![
                serde_json::from_value(json!({
                    "metadata": {"name": "kubernetes", "namespace": "default"},
                    "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}
                }))
                .unwrap(),
                serde_json::from_value(json!({
                    "metadata": {"name": "my-db", "namespace": "ns"},
                    "spec": {"clusterIP": "10.43.0.9", "ports": [{"port": 5432}]}
                }))
                .unwrap(),
                serde_json::from_value(json!({
                    "metadata": {"name": "headless", "namespace": "ns"},
                    "spec": {"clusterIP": "None", "ports": [{"port": 1}]}
                }))
                .unwrap(),
                serde_json::from_value(json!({
                    "metadata": {"name": "other", "namespace": "elsewhere"},
                    "spec": {"clusterIP": "10.43.0.7", "ports": [{"port": 80}]}
                }))
                .unwrap(),
            ],
        }
    }

    fn run(pod: serde_json::Value) -> Result<Environment, String> {
        let pod: Pod = serde_json::from_value(pod).unwrap();
        let container = pod.spec.as_ref().unwrap().containers[0].clone();
        let facts = PodRuntimeFacts {
            pod_ips: vec!["10.42.0.5".into()],
            host_ips: vec!["192.168.0.2".into()],
        };
        let src = source();
        let alloc: BTreeMap<String, String> = [("memory".to_string(), "1Gi".to_string())].into();
        make_environment_variables(&EnvInputs {
            pod: &pod,
            container: &container,
            facts: &facts,
            allocatable: &alloc,
            sources: Some(&src),
        })
    }

    fn get<'a>(env: &'a Environment, name: &str) -> Option<&'a str> {
        env.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_source_in_upstream_order() {
        let env = run(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": [{
                "name": "c",
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                            {"secretRef": {"name": "sec"}}],
                "env": [
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIPs"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
                    {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                    {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}},
                    {"name": "MSG", "value": "$(POD) is $(COLOR) at $(MY_DB_SERVICE_HOST) $$(POD) $(NOPE)"},
                    {"name": "CFG_size", "value": "override"}
                ]
            }]}
        }))
        .unwrap();
        assert_eq!(get(&env, "CFG_color"), Some("blue"));
        assert_eq!(get(&env, "CFG_size"), Some("override"));
        assert_eq!(get(&env, "password"), Some("hunter2"));
        assert_eq!(get(&env, "POD"), Some("p"));
        assert_eq!(get(&env, "APP"), Some("web"));
        assert_eq!(get(&env, "IP"), Some("10.42.0.5"));
        assert_eq!(get(&env, "HOST"), Some("192.168.0.2"));
        assert_eq!(get(&env, "NODE"), Some("n1"));
        assert_eq!(get(&env, "MEM"), Some("1024"));
        assert_eq!(get(&env, "PW"), Some("hunter2"));
        assert_eq!(get(&env, "GONE"), None);
        assert_eq!(
            get(&env, "MSG"),
            Some("p is blue at 10.43.0.9 $(POD) $(NOPE)")
        );
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
        assert_eq!(get(&env, "KUBERNETES_SERVICE_PORT_HTTPS"), Some("443"));
        assert_eq!(get(&env, "KUBERNETES_PORT"), Some("tcp://10.43.0.1:443"));
        assert_eq!(get(&env, "KUBERNETES_PORT_443_TCP_ADDR"), Some("10.43.0.1"));
        assert_eq!(get(&env, "MY_DB_PORT_5432_TCP_PROTO"), Some("tcp"));
        assert_eq!(get(&env, "HEADLESS_SERVICE_HOST"), None);
        assert_eq!(get(&env, "OTHER_SERVICE_HOST"), None);
        assert_eq!(
            env.invalid_names,
            ["Keys [CFG_bad=key] from the EnvFrom configMap ns/cfg were skipped since they are considered invalid environment variable names."]
        );
    }

    #[test]
    fn service_links_off_keeps_the_master_service() {
        let env = run(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"enableServiceLinks": false, "containers": [{"name": "c"}]}
        }))
        .unwrap();
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
        assert_eq!(get(&env, "MY_DB_SERVICE_HOST"), None);
    }

    #[test]
    fn missing_sources_give_upstream_messages() {
        let pod = |env: serde_json::Value| {
            json!({"metadata": {"name": "p", "namespace": "ns"},
                   "spec": {"containers": [{"name": "c", "env": env}]}})
        };
        assert_eq!(
            run(pod(
                json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k"}}}])
            ))
            .unwrap_err(),
            "configmap \"x\" not found"
        );
        assert_eq!(
            run(pod(json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}])))
                .unwrap_err(),
            "couldn't find key k in ConfigMap ns/cfg"
        );
        assert_eq!(
            run(pod(
                json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
            ))
            .unwrap_err(),
            "secret \"s\" not found"
        );
        assert_eq!(
            run(pod(
                json!([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k"}}}])
            ))
            .unwrap_err(),
            "couldn't find key k in Secret ns/sec"
        );
        let from_missing = json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "zz"}}]}]}});
        assert_eq!(run(from_missing).unwrap_err(), "configmap \"zz\" not found");
    }

    #[test]
    fn command_and_args_expand_from_the_environment() {
        let vars = vec![("A".to_string(), "1".to_string())];
        let (c, a) = expand_command_and_args(
            &["echo".into(), "$(A)".into()],
            &["$$(A)".into(), "$(B)".into()],
            &vars,
        );
        assert_eq!(c, ["echo", "1"]);
        assert_eq!(a, ["$(A)", "$(B)"]);
    }
}
