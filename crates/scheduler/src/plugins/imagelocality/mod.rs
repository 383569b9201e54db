//! `ImageLocality`: prefers nodes that already have the pod's images, weighted by image
//! size and by how many nodes share the image (so one popular image does not pull every
//! pod onto the nodes that happen to have it).

use std::collections::HashMap;
use std::sync::Arc;

use crate::cache::Snapshot;
use crate::framework::types::normalized_image_name;
use crate::framework::{
    CycleState, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Status, MAX_NODE_SCORE,
};

const MB: i64 = 1024 * 1024;
/// Below this sum of scaled image sizes a node scores 0.
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container, above this a node scores 100.
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

const PRE_SCORE_KEY: &str = "PreScoreImageLocality";

#[derive(Clone)]
struct State {
    images: Vec<String>,
    total_nodes: usize,
    image_nodes: Arc<HashMap<String, usize>>,
}

/// The plugin.
pub struct ImageLocality;

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        if snapshot.image_nodes.is_empty() {
            // No node reports images: every node would score 0.
            return Status::skip();
        }
        let images = pod
            .pod
            .spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
            .filter_map(|c| c.image.as_deref())
            .map(normalized_image_name)
            .collect();
        state.write(
            PRE_SCORE_KEY,
            State {
                images,
                total_nodes: snapshot.nodes.len(),
                image_nodes: snapshot.image_nodes.clone(),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<State>(PRE_SCORE_KEY) else {
            return 0;
        };
        let sum: i64 = s
            .images
            .iter()
            .filter_map(|image| {
                let size = *node.images.get(image)?;
                let spread =
                    *s.image_nodes.get(image).unwrap_or(&0) as f64 / s.total_nodes.max(1) as f64;
                Some((size as f64 * spread) as i64)
            })
            .sum();
        let max = MAX_CONTAINER_THRESHOLD * s.images.len().max(1) as i64;
        let sum = sum.clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::node;
    use crate::plugins::testing::pod;
    use serde_json::json;

    #[test]
    fn nodes_with_big_images_score_higher() {
        let with = node(
            "with",
            json!({"status": {"images": [{"names": ["docker.io/library/big:1"], "sizeBytes": 523 * MB}]}}),
        );
        let without = node("without", json!({}));
        let snapshot = Snapshot::from_nodes(vec![with.clone(), without.clone()]);
        let p = pod(json!({"containers": [{"name": "c", "image": "docker.io/library/big:1"}]}));
        let mut state = CycleState::default();
        assert!(ImageLocality
            .pre_score(&mut state, &p, &snapshot, &[])
            .is_success());
        // 523 MB on one node of two → 261.5 MB scaled → (261.5 - 23) / (1000 - 23) ≈ 24.
        assert_eq!(ImageLocality.score(&state, &p, &with), 24);
        assert_eq!(ImageLocality.score(&state, &p, &without), 0);
    }
}
