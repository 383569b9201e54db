//! The pod lifecycle event generator (upstream `pkg/kubelet/pleg/generic.go`): relists the
//! runtime's containers every second and wakes the workers of pods whose containers
//! changed state, so an exit (a crash, an OOM kill, a finished init container) is acted
//! on within about a second rather than at the next periodic resync. One cheap
//! `ListContainers` per node per period; only the affected pods then look closer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::{ContainerState, Runtime};

/// Upstream's generic PLEG relist period.
pub const RELIST_PERIOD: Duration = Duration::from_secs(1);

/// The pod uids whose containers appeared, disappeared or changed state between two
/// relists.
pub fn changed_pods(
    before: &HashMap<String, (String, ContainerState)>,
    now: &HashMap<String, (String, ContainerState)>,
) -> HashSet<String> {
    let mut pods = HashSet::new();
    for (id, (uid, state)) in now {
        if before.get(id).map(|(_, s)| s) != Some(state) {
            pods.insert(uid.clone());
        }
    }
    for (id, (uid, _)) in before {
        if !now.contains_key(id) {
            pods.insert(uid.clone());
        }
    }
    pods.remove("");
    pods
}

/// Relists forever, calling `wake(pod_uid)` for each pod with a change.
pub async fn run(runtime: Arc<dyn Runtime>, period: Duration, wake: impl Fn(&str) + Send) {
    let mut before: HashMap<String, (String, ContainerState)> = HashMap::new();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Ok(listed) = runtime.list_container_states().await else {
            // The runtime is restarting; the periodic resync covers the gap.
            continue;
        };
        let now: HashMap<_, _> = listed
            .into_iter()
            .map(|(id, uid, state)| (id, (uid, state)))
            .collect();
        for uid in changed_pods(&before, &now) {
            wake(&uid);
        }
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changes_new_and_gone_containers_wake_their_pods() {
        let entry = |uid: &str, s| (uid.to_string(), s);
        let before: HashMap<_, _> = [
            ("c1".to_string(), entry("a", ContainerState::Running)),
            ("c2".to_string(), entry("b", ContainerState::Running)),
            ("c3".to_string(), entry("c", ContainerState::Running)),
        ]
        .into();
        let now: HashMap<_, _> = [
            ("c1".to_string(), entry("a", ContainerState::Running)),
            ("c2".to_string(), entry("b", ContainerState::Exited)),
            ("c4".to_string(), entry("d", ContainerState::Created)),
        ]
        .into();
        let mut woken: Vec<_> = changed_pods(&before, &now).into_iter().collect();
        woken.sort();
        assert_eq!(woken, ["b", "c", "d"]);
    }
}
