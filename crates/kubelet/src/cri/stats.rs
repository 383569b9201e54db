//! Resource usage: `ListContainerStats`.

use super::{error, pb, request, CriRuntime};
use crate::runtime::{ContainerStats, Result};

impl CriRuntime {
    pub(super) async fn stats(&self) -> Result<Vec<ContainerStats>> {
        let response = self
            .runtime_client()
            .list_container_stats(request(pb::ListContainerStatsRequest { filter: None }))
            .await
            .map_err(error)?
            .into_inner();
        Ok(response.stats.into_iter().map(from_cri).collect())
    }
}

/// CRI's container stats as ours; missing values read as zero.
pub fn from_cri(stats: pb::ContainerStats) -> ContainerStats {
    let cpu = stats.cpu.unwrap_or_default();
    let memory = stats.memory.unwrap_or_default();
    ContainerStats {
        id: stats.attributes.map(|a| a.id).unwrap_or_default(),
        cpu_usage_core_nanoseconds: cpu.usage_core_nano_seconds.map_or(0, |v| v.value),
        memory_working_set_bytes: memory.working_set_bytes.map_or(0, |v| v.value),
        timestamp: cpu.timestamp.max(memory.timestamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_read_cpu_and_working_set() {
        let stats = from_cri(pb::ContainerStats {
            attributes: Some(pb::ContainerAttributes {
                id: "c1".into(),
                ..Default::default()
            }),
            cpu: Some(pb::CpuUsage {
                timestamp: 5,
                usage_core_nano_seconds: Some(pb::UInt64Value { value: 1_000 }),
                usage_nano_cores: None,
            }),
            memory: Some(pb::MemoryUsage {
                timestamp: 6,
                working_set_bytes: Some(pb::UInt64Value { value: 4096 }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(stats.id, "c1");
        assert_eq!(stats.cpu_usage_core_nanoseconds, 1_000);
        assert_eq!(stats.memory_working_set_bytes, 4096);
        assert_eq!(stats.timestamp, 6);
        assert_eq!(
            from_cri(pb::ContainerStats::default()).cpu_usage_core_nanoseconds,
            0
        );
    }
}
