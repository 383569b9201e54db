use super::*;
use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn int(i: i32) -> IntOrString {
    IntOrString::Int(i)
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

fn rs(
    name: &str,
    replicas: i32,
    available: i32,
    created: i64,
    annotations: &[(&str, &str)],
) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(name.into()),
            creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(available),
            ..Default::default()
        }),
    }
}

#[test]
fn surge_rounds_up_and_unavailability_rounds_down() {
    assert_eq!(
        resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10),
        Ok((3, 2))
    );
    assert_eq!(resolve_fenceposts(None, None, 3), Ok((1, 0)));
    assert_eq!(
        resolve_fenceposts(Some(&int(2)), Some(&int(1)), 5),
        Ok((2, 1))
    );
    // Both zero would never make progress: one pod may be unavailable.
    assert_eq!(
        resolve_fenceposts(Some(&int(0)), Some(&pct("10%")), 5),
        Ok((0, 1))
    );
    assert!(resolve_fenceposts(Some(&pct("x%")), None, 5).is_err());
}

#[test]
fn max_unavailable_is_capped_by_replicas_and_zero_for_recreate() {
    let d = deployment(2, int(1), int(5));
    assert_eq!(max_unavailable(&d), 2);
    assert_eq!(max_surge(&d), 1);
    let mut recreate = d.clone();
    recreate.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    assert_eq!(
        new_rs_new_replicas(&recreate, &[], &rs("n", 0, 0, 1, &[])),
        2
    );
}

#[test]
fn new_replica_set_grows_within_the_surge() {
    let d = deployment(10, int(3), int(2));
    let old = rs("old", 10, 10, 1, &[]);
    let new = rs("new", 0, 0, 2, &[]);
    // 10 + 3 allowed, 10 exist: 3 more.
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
    let old = rs("old", 8, 8, 1, &[]);
    let new = rs("new", 3, 0, 2, &[]);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 5);
    // Never beyond spec.replicas.
    let old = rs("old", 0, 0, 1, &[]);
    let new = rs("new", 9, 0, 2, &[]);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 10);
    // At the surge: no change.
    let old = rs("old", 10, 10, 1, &[]);
    let new = rs("new", 3, 0, 2, &[]);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
}

#[test]
fn proportional_scaling_splits_by_size_and_gives_leftovers_to_the_largest() {
    // Mid-rollout at 10 replicas (max 13): old 8, new 5. Scale to 20 (max 23): +10.
    let mut d = deployment(20, int(3), int(2));
    d.status = Some(DeploymentStatus {
        replicas: Some(13),
        ..Default::default()
    });
    let mut old = rs("old", 8, 8, 1, &[(MAX_REPLICAS_ANNOTATION, "13")]);
    let mut new = rs("new", 5, 0, 2, &[(MAX_REPLICAS_ANNOTATION, "13")]);
    let mut all = vec![&mut old, &mut new];
    let (sizes, to_add) = crate::deployment::sync::proportional_sizes(&d, &mut all);
    assert_eq!(to_add, 10);
    // 8*23/13 = 14.15 → +6; 5*23/13 = 8.85 → +4 (capped by what is left).
    let by_name: Vec<(String, i32)> = all
        .iter()
        .map(|rs| rs.metadata.name.clone().unwrap())
        .zip(sizes)
        .collect();
    assert_eq!(
        by_name,
        vec![("old".to_string(), 14), ("new".to_string(), 9)]
    );

    // Scaling down to 5 (max 8): -15, larger (older on ties) first.
    let mut d = deployment(5, int(3), int(2));
    d.status = Some(DeploymentStatus {
        replicas: Some(23),
        ..Default::default()
    });
    let mut old = rs("old", 14, 14, 1, &[(MAX_REPLICAS_ANNOTATION, "23")]);
    let mut new = rs("new", 9, 0, 2, &[(MAX_REPLICAS_ANNOTATION, "23")]);
    let mut all = vec![&mut new, &mut old];
    let (sizes, to_add) = crate::deployment::sync::proportional_sizes(&d, &mut all);
    assert_eq!(to_add, -15);
    assert_eq!(all[0].metadata.name.as_deref(), Some("old"));
    assert_eq!(sizes.iter().sum::<i32>(), 8);
    assert_eq!(sizes, vec![5, 3]);
}

#[test]
fn saturation_needs_annotation_spec_and_availability() {
    let d = deployment(3, int(1), int(0));
    assert!(is_saturated(
        &d,
        Some(&rs("n", 3, 3, 1, &[(DESIRED_REPLICAS_ANNOTATION, "3")]))
    ));
    assert!(!is_saturated(
        &d,
        Some(&rs("n", 3, 2, 1, &[(DESIRED_REPLICAS_ANNOTATION, "3")]))
    ));
    assert!(!is_saturated(&d, Some(&rs("n", 3, 3, 1, &[]))));
    assert!(!is_saturated(&d, None));
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "nginx".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

#[test]
fn template_hash_is_stable_safe_and_follows_the_template_and_collisions() {
    let a = compute_hash(&template("nginx:1.27"), None);
    assert_eq!(a, compute_hash(&template("nginx:1.27"), None));
    assert_ne!(a, compute_hash(&template("nginx:1.28"), None));
    assert_ne!(a, compute_hash(&template("nginx:1.27"), Some(1)));
    assert!(a.bytes().all(|b| SAFE_ALPHANUMS.contains(&b)), "{a}");
}

#[test]
fn templates_compare_equal_ignoring_the_hash_label() {
    let mut hashed = template("nginx:1.27");
    hashed
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(POD_TEMPLATE_HASH_LABEL.into(), "abc".into());
    assert!(equal_ignore_hash(&hashed, &template("nginx:1.27")));
    assert!(!equal_ignore_hash(&hashed, &template("nginx:1.28")));
}

#[test]
fn revisions_and_revision_history() {
    let rss = vec![
        rs("a", 0, 0, 1, &[(REVISION_ANNOTATION, "1")]),
        rs("b", 0, 0, 2, &[(REVISION_ANNOTATION, "3")]),
        rs("c", 0, 0, 3, &[(REVISION_ANNOTATION, "2")]),
    ];
    assert_eq!((max_revision(&rss), last_revision(&rss)), (3, 2));
    let mut d = deployment(1, int(1), int(0));
    d.metadata.annotations =
        Some([("kubernetes.io/change-cause".to_string(), "undo".to_string())].into());
    // Rolling back to revision 1 makes it revision 4 and remembers 1.
    let mut back = rss[0].clone();
    assert!(set_new_replica_set_annotations(
        &d,
        &mut back,
        "4",
        true,
        MAX_REV_HISTORY_LENGTH_IN_CHARS
    ));
    let a = back.metadata.annotations.clone().unwrap();
    assert_eq!(a[REVISION_ANNOTATION], "4");
    assert_eq!(a[REVISION_HISTORY_ANNOTATION], "1");
    assert_eq!(a["kubernetes.io/change-cause"], "undo");
    assert!(set_new_replica_set_annotations(
        &d,
        &mut back,
        "6",
        true,
        MAX_REV_HISTORY_LENGTH_IN_CHARS
    ));
    assert_eq!(
        back.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY_ANNOTATION],
        "1,4"
    );
    // A revision is never lowered.
    assert!(!set_new_replica_set_annotations(
        &d,
        &mut back,
        "5",
        true,
        MAX_REV_HISTORY_LENGTH_IN_CHARS
    ));
    // The history keeps the newest entries within the limit.
    assert!(set_new_replica_set_annotations(&d, &mut back, "7", true, 4));
    assert_eq!(
        back.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY_ANNOTATION],
        "4,6"
    );
}

#[test]
fn conditions_keep_transition_time_while_status_holds() {
    let mut status = DeploymentStatus::default();
    let mut first = new_condition("Progressing", "True", NEW_RS_REASON, "a".into());
    first.last_transition_time = Some(Time(Timestamp::from_second(100).unwrap()));
    set_condition(&mut status, first);
    set_condition(
        &mut status,
        new_condition("Progressing", "True", RS_UPDATED_REASON, "b".into()),
    );
    let c = get_condition(&status, "Progressing").unwrap();
    assert_eq!(c.reason.as_deref(), Some(RS_UPDATED_REASON));
    assert_eq!(c.last_transition_time.as_ref().unwrap().0.as_second(), 100);
    set_condition(
        &mut status,
        new_condition("Progressing", "False", TIMED_OUT_REASON, "c".into()),
    );
    assert_ne!(
        get_condition(&status, "Progressing")
            .unwrap()
            .last_transition_time
            .as_ref()
            .unwrap()
            .0
            .as_second(),
        100
    );
}

#[test]
fn timing_out_needs_a_deadline_and_stale_progress() {
    let mut d = deployment(1, int(1), int(0));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(10);
    let mut status = DeploymentStatus::default();
    let mut cond = new_condition("Progressing", "True", RS_UPDATED_REASON, "x".into());
    cond.last_update_time = Some(Time(Timestamp::from_second(1000).unwrap()));
    set_condition(&mut status, cond);
    assert!(!deployment_timed_out(
        &d,
        &status,
        Timestamp::from_second(1005).unwrap()
    ));
    assert!(deployment_timed_out(
        &d,
        &status,
        Timestamp::from_second(1011).unwrap()
    ));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(i32::MAX);
    assert!(!deployment_timed_out(
        &d,
        &status,
        Timestamp::from_second(99999).unwrap()
    ));
}
