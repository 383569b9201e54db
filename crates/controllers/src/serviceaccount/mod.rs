//! The service account controller (upstream `pkg/controller/serviceaccount`,
//! `serviceaccounts_controller.go`): every active namespace has a `default`
//! ServiceAccount, recreated if deleted. [`root_ca_publisher`] is its sibling that
//! publishes the cluster CA as `kube-root-ca.crt`.

pub mod root_ca_publisher;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};

use crate::controller::{run_workers, Context, Controller};
use k8rs_client::{Change, Informer, ObjectKey, WorkQueue};

/// The accounts every namespace gets (upstream `DefaultServiceAccountsControllerOptions`).
const SERVICE_ACCOUNTS: [&str; 1] = ["default"];

/// Ensures the default ServiceAccounts exist in every active namespace.
pub struct ServiceAccountsController {
    client: kube::Client,
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
}

/// Registers handlers (namespace added or updated, account deleted) and starts workers;
/// keys are namespace names.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let namespaces = ctx.informers.get::<Namespace>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    let q = queue.clone();
    namespaces.add_handler(move |change| {
        if let Change::Applied { new, .. } = change {
            q.add(ObjectKey::of(new.as_ref()));
        }
    });
    let q = queue.clone();
    accounts.add_handler(move |change| {
        if let Change::Deleted(sa) = change {
            if SERVICE_ACCOUNTS.contains(&sa.metadata.name.as_deref().unwrap_or_default()) {
                q.add(ObjectKey::cluster(
                    sa.metadata.namespace.clone().unwrap_or_default(),
                ));
            }
        }
    });
    let controller = Arc::new(ServiceAccountsController {
        client: ctx.client.clone(),
        namespaces,
        accounts,
    });
    run_workers(controller, queue, 2)
}

#[async_trait::async_trait]
impl Controller for ServiceAccountsController {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    /// Upstream `syncNamespace`.
    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        self.namespaces.wait_synced().await;
        self.accounts.wait_synced().await;
        let Some(ns) = self.namespaces.get(&ObjectKey::cluster(&key.name)) else {
            return Ok(());
        };
        if !is_active(&ns) {
            // Don't create accounts in namespaces that are going away.
            return Ok(());
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &key.name);
        for name in SERVICE_ACCOUNTS {
            if self
                .accounts
                .get(&ObjectKey::new(&key.name, name))
                .is_some()
            {
                continue;
            }
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..ObjectMeta::default()
                },
                ..ServiceAccount::default()
            };
            match api.create(&PostParams::default(), &sa).await {
                Ok(_) => {}
                // Already there (our cache lags), or the namespace is going / gone.
                Err(kube::Error::Api(e)) if matches!(e.code, 409 | 404 | 403) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Whether the namespace is `Active` (not terminating).
pub(crate) fn is_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|p| p == "Active")
}
