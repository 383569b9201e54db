//! kube-rs as a client: kubeconfig, create, list, watch and streaming-list watch.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8rs_e2e::TestServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};

const LABEL: &str = "suite=kube-rs";
const WAIT: Duration = Duration::from_secs(15);

async fn client_for(server: &TestServer) -> Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).expect("admin.kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube Config from admin.kubeconfig");
    Client::try_from(config).expect("kube Client")
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"suite": "kube-rs"}},
        "data": {"value": value},
    }))
    .expect("ConfigMap")
}

fn name_of(cm: &ConfigMap) -> &str {
    cm.metadata.name.as_deref().unwrap_or_default()
}

/// Pulls events until `wanted` matches one, failing after [`WAIT`]; returns the events seen.
async fn wait_for_event<S>(
    stream: &mut S,
    what: &str,
    wanted: impl Fn(&watcher::Event<ConfigMap>) -> bool,
) -> Vec<watcher::Event<ConfigMap>>
where
    S: Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    let mut seen = Vec::new();
    let result = tokio::time::timeout(WAIT, async {
        while let Some(event) = stream.next().await {
            let event =
                event.unwrap_or_else(|e| panic!("watch error while waiting for {what}: {e}"));
            let done = wanted(&event);
            seen.push(event);
            if done {
                return;
            }
        }
        panic!("the watch stream ended before {what}");
    })
    .await;
    if result.is_err() {
        panic!("no {what} within {WAIT:?}; saw {seen:?}");
    }
    seen
}

fn run<F: std::future::Future<Output = ()>>(test: impl FnOnce(TestServer) -> F) {
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(test(server));
}

#[test]
fn create_list_and_watch() {
    run(|server| async move {
        let client = client_for(&server).await;
        let version = client.apiserver_version().await.expect("GET /version");
        assert_eq!(
            (version.major.as_str(), version.minor.as_str()),
            ("1", "33")
        );

        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        let mut events = watcher(api.clone(), watcher::Config::default().labels(LABEL)).boxed();
        // The initial (empty) list completes before we write anything.
        wait_for_event(&mut events, "InitDone", |e| {
            matches!(e, watcher::Event::InitDone)
        })
        .await;

        let created = api
            .create(&PostParams::default(), &config_map("from-kube", "1"))
            .await
            .expect("create ConfigMap");
        assert!(
            created.metadata.uid.is_some(),
            "the server fills in metadata.uid"
        );
        assert!(created.metadata.resource_version.is_some());

        let list = api
            .list(&ListParams::default().labels(LABEL))
            .await
            .expect("list");
        let names: Vec<&str> = list.items.iter().map(name_of).collect();
        assert_eq!(names, ["from-kube"]);
        assert!(
            list.metadata.resource_version.is_some(),
            "lists carry a resourceVersion"
        );

        wait_for_event(
            &mut events,
            "Apply(from-kube)",
            |e| matches!(e, watcher::Event::Apply(cm) if name_of(cm) == "from-kube"),
        )
        .await;

        let patch = serde_json::json!({"data": {"value": "2"}});
        api.patch("from-kube", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("merge patch");
        wait_for_event(&mut events, "Apply(from-kube, value 2)", |e| {
            matches!(e, watcher::Event::Apply(cm)
                if cm.data.as_ref().and_then(|d| d.get("value")).map(String::as_str) == Some("2"))
        })
        .await;

        api.delete("from-kube", &DeleteParams::default())
            .await
            .expect("delete");
        wait_for_event(
            &mut events,
            "Delete(from-kube)",
            |e| matches!(e, watcher::Event::Delete(cm) if name_of(cm) == "from-kube"),
        )
        .await;
        let err = api.get("from-kube").await.expect_err("deleted");
        assert!(
            matches!(&err, kube::Error::Api(status) if status.code == 404),
            "expected 404, got {err:?}"
        );
    });
}

#[test]
fn streaming_list_watch() {
    run(|server| async move {
        let client = client_for(&server).await;
        let api: Api<ConfigMap> = Api::namespaced(client, "default");
        api.create(&PostParams::default(), &config_map("before", "1"))
            .await
            .expect("create before");

        let config = watcher::Config::default().labels(LABEL).streaming_lists();
        let mut events = watcher(api.clone(), config).boxed();
        // sendInitialEvents: the existing object, then the initial-events-end bookmark.
        let seen = wait_for_event(&mut events, "InitDone", |e| {
            matches!(e, watcher::Event::InitDone)
        })
        .await;
        assert!(
            seen.iter()
                .any(|e| matches!(e, watcher::Event::InitApply(cm) if name_of(cm) == "before")),
            "the initial events must include `before`: {seen:?}"
        );

        api.create(&PostParams::default(), &config_map("after", "1"))
            .await
            .expect("create after");
        wait_for_event(
            &mut events,
            "Apply(after)",
            |e| matches!(e, watcher::Event::Apply(cm) if name_of(cm) == "after"),
        )
        .await;
        api.delete("before", &DeleteParams::default())
            .await
            .expect("delete");
        wait_for_event(
            &mut events,
            "Delete(before)",
            |e| matches!(e, watcher::Event::Delete(cm) if name_of(cm) == "before"),
        )
        .await;
    });
}
