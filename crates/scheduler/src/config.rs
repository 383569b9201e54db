//! `KubeSchedulerConfiguration` (`kubescheduler.config.k8s.io/v1`), the subset k8rs
//! reads: profiles with their scheduler names, plugins enabled and disabled per extension
//! point (or `multiPoint`), score weights, `pluginConfig` arguments and
//! `percentageOfNodesToScore`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;

/// The default scheduler name.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Upstream's default plugins (`getDefaultPlugins`) with their score weights, in
/// multi-point order. Volume plugins are absent: k8rs has no volume binding yet.
pub const DEFAULT_PLUGINS: &[(&str, i64)] = &[
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    api_version: Option<String>,
    kind: Option<String>,
    percentage_of_nodes_to_score: Option<u32>,
    #[serde(default)]
    profiles: Vec<RawProfile>,
}

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    scheduler_name: Option<String>,
    percentage_of_nodes_to_score: Option<u32>,
    #[serde(default)]
    plugins: HashMap<String, PluginSet>,
    #[serde(default)]
    plugin_config: Vec<PluginConfig>,
}

/// `enabled` and `disabled` plugins of one extension point.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct PluginSet {
    #[serde(default)]
    enabled: Vec<PluginRef>,
    #[serde(default)]
    disabled: Vec<PluginRef>,
}

#[derive(Deserialize, Default, Debug, Clone)]
struct PluginRef {
    name: String,
    weight: Option<i64>,
}

#[derive(Deserialize, Default, Debug, Clone)]
struct PluginConfig {
    name: String,
    #[serde(default)]
    args: Value,
}

/// One scheduling profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The `spec.schedulerName` it serves.
    pub scheduler_name: String,
    /// `None`: upstream's adaptive percentage.
    pub percentage_of_nodes_to_score: Option<u32>,
    plugins: HashMap<String, PluginSet>,
    /// Arguments per plugin name.
    pub plugin_config: HashMap<String, Value>,
}

impl Profile {
    /// The default profile.
    pub fn default_profile() -> Profile {
        Profile {
            scheduler_name: DEFAULT_SCHEDULER_NAME.to_string(),
            percentage_of_nodes_to_score: None,
            plugins: HashMap::new(),
            plugin_config: HashMap::new(),
        }
    }

    /// Plugins enabled at `point` (`filter`, `score`, …) with their weights, in order:
    /// multi-point plugins (defaults, minus `multiPoint.disabled`, plus
    /// `multiPoint.enabled`) minus those disabled at the point, then the point's own.
    pub fn enabled(&self, point: &str) -> Vec<(String, i64)> {
        let empty = PluginSet::default();
        let multi = self.plugins.get("multiPoint").unwrap_or(&empty);
        let here = self.plugins.get(point).unwrap_or(&empty);
        let disabled = |set: &PluginSet, name: &str| {
            set.disabled.iter().any(|d| d.name == name || d.name == "*")
        };
        let mut out: Vec<(String, i64)> = Vec::new();
        for (name, weight) in DEFAULT_PLUGINS {
            if !disabled(multi, name) && !disabled(here, name) {
                out.push((name.to_string(), (*weight).max(1)));
            }
        }
        for p in &multi.enabled {
            if disabled(here, &p.name) {
                continue;
            }
            match out.iter_mut().find(|(n, _)| *n == p.name) {
                Some(e) => e.1 = p.weight.unwrap_or(e.1),
                None => out.push((p.name.clone(), p.weight.unwrap_or(1))),
            }
        }
        for p in &here.enabled {
            match out.iter_mut().find(|(n, _)| *n == p.name) {
                Some(e) => e.1 = p.weight.unwrap_or(e.1),
                None => out.push((p.name.clone(), p.weight.unwrap_or(1))),
            }
        }
        out
    }
}

/// The profiles in a configuration file (the default profile when it names none).
pub fn load(path: &Path) -> anyhow::Result<Vec<Profile>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scheduler config {}", path.display()))?;
    parse(&text).with_context(|| format!("invalid scheduler config {}", path.display()))
}

/// Parses a `KubeSchedulerConfiguration` document.
pub fn parse(text: &str) -> anyhow::Result<Vec<Profile>> {
    let raw: RawConfig = serde_saphyr::from_str(text)?;
    if let Some(v) = raw.api_version.as_deref() {
        if v != "kubescheduler.config.k8s.io/v1" {
            bail!("apiVersion {v:?} is not supported; use kubescheduler.config.k8s.io/v1");
        }
    }
    if let Some(k) = raw.kind.as_deref() {
        if k != "KubeSchedulerConfiguration" {
            bail!("kind {k:?} is not KubeSchedulerConfiguration");
        }
    }
    let raw_profiles = if raw.profiles.is_empty() {
        vec![RawProfile::default()]
    } else {
        raw.profiles
    };
    let mut profiles: Vec<Profile> = Vec::new();
    for p in raw_profiles {
        let name = p
            .scheduler_name
            .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string());
        if profiles.iter().any(|q| q.scheduler_name == name) {
            bail!("profiles[].schedulerName: Duplicate value: {name:?}");
        }
        profiles.push(Profile {
            scheduler_name: name,
            percentage_of_nodes_to_score: p
                .percentage_of_nodes_to_score
                .or(raw.percentage_of_nodes_to_score)
                .filter(|p| *p > 0),
            plugins: p.plugins,
            plugin_config: p
                .plugin_config
                .into_iter()
                .map(|c| (c.name, c.args))
                .collect(),
        });
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_carry_upstream_weights() {
        let p = Profile::default_profile();
        let score = p.enabled("score");
        assert!(score.contains(&("TaintToleration".to_string(), 3)));
        assert!(score.contains(&("NodeAffinity".to_string(), 2)));
        assert!(score.contains(&("ImageLocality".to_string(), 1)));
    }

    #[test]
    fn profiles_disable_enable_and_weigh_plugins() {
        let profiles = parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  plugins:
    score:
      disabled:
      - name: "*"
      enabled:
      - name: NodeResourcesFit
        weight: 5
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
        )
        .unwrap();
        assert_eq!(profiles.len(), 2);
        let packer = &profiles[1];
        assert_eq!(packer.scheduler_name, "packer");
        assert_eq!(
            packer.enabled("score"),
            vec![("NodeResourcesFit".to_string(), 5)]
        );
        assert!(packer
            .enabled("filter")
            .iter()
            .any(|(n, _)| n == "TaintToleration"));
        assert_eq!(
            packer.plugin_config["NodeResourcesFit"]["scoringStrategy"]["type"],
            "MostAllocated"
        );
        assert!(parse("profiles: [{schedulerName: a}, {schedulerName: a}]").is_err());
    }
}
