use super::*;
use k8s_openapi::api::apps::v1::ReplicaSetSpec;
use k8s_openapi::api::core::v1::{PodCondition, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn rs(min_ready: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            generation: Some(4),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(3),
            min_ready_seconds: Some(min_ready),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(
                        [
                            ("app".to_string(), "web".to_string()),
                            ("tier".to_string(), "a".to_string()),
                        ]
                        .into(),
                    ),
                    ..Default::default()
                }),
                spec: None,
            }),
            ..Default::default()
        }),
        status: None,
    }
}

fn pod(labels: &[(&str, &str)], ready_secs_ago: Option<i64>) -> Arc<Pod> {
    let now = Timestamp::now().as_second();
    Arc::new(Pod {
        metadata: ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            conditions: ready_secs_ago.map(|ago| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(Timestamp::from_second(now - ago).unwrap())),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    })
}

#[test]
fn status_counts_labels_readiness_and_availability() {
    let pods = vec![
        pod(&[("app", "web"), ("tier", "a")], Some(100)),
        pod(&[("app", "web"), ("tier", "a")], Some(1)),
        pod(&[("app", "web")], None),
    ];
    let status = calculate_status(&rs(10), &pods, None, Timestamp::now());
    assert_eq!(status.replicas, 3);
    assert_eq!(status.fully_labeled_replicas, Some(2));
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(
        status.available_replicas,
        Some(1),
        "one pod has not been ready for 10s"
    );
    assert_eq!(status.observed_generation, Some(4));
    assert_eq!(status.conditions, None);
}

#[test]
fn failures_set_and_clear_the_replica_failure_condition() {
    let err = anyhow::anyhow!("pods \"web-x\" is forbidden: exceeded quota");
    let mut rs = rs(0);
    let status = calculate_status(&rs, &[], Some(&err), Timestamp::now());
    let cond = &status.conditions.as_ref().unwrap()[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_deref()
        ),
        ("ReplicaFailure", "True", Some("FailedCreate"))
    );
    assert_eq!(
        cond.message.as_deref(),
        Some("pods \"web-x\" is forbidden: exceeded quota")
    );
    rs.status = Some(status);
    let status = calculate_status(&rs, &[], None, Timestamp::now());
    assert_eq!(status.conditions, None);
    assert_eq!(
        status.ready_replicas, None,
        "zero counts are omitted as upstream's omitempty"
    );
}
