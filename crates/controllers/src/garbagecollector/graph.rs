//! The dependency graph (upstream `graph.go` and `processGraphChanges` in
//! `graph_builder.go`): one node per object that owns or is owned, keyed by uid, with
//! edges from owners to dependents. Applying a change returns the work it causes; the
//! graph itself does no I/O, so its logic is tested here without a server.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// The finalizer that asks for dependents to be deleted before the owner.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer that asks for dependents to be released before the owner goes.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Which object a node stands for (upstream `objectReference`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// `apps/v1`, `v1`, …
    pub api_version: String,
    /// `ReplicaSet`, …
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// The object's uid: the node's key.
    pub uid: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// What the graph needs to know about an object, taken from its metadata.
#[derive(Clone, Debug)]
pub struct ObjectState {
    /// Who the object is.
    pub identity: Identity,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerReference>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub being_deleted: bool,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
}

impl ObjectState {
    fn has_finalizer(&self, name: &str) -> bool {
        self.finalizers.iter().any(|f| f == name)
    }

    /// Being deleted in the foreground: dependents go first.
    pub fn deleting_dependents(&self) -> bool {
        self.being_deleted && self.has_finalizer(FOREGROUND_FINALIZER)
    }

    /// Being deleted with its dependents orphaned.
    pub fn orphaning(&self) -> bool {
        self.being_deleted && self.has_finalizer(ORPHAN_FINALIZER)
    }
}

/// One node: an observed object, or a "virtual" owner only known from a reference.
#[derive(Clone, Debug)]
pub struct Node {
    /// Who the object is.
    pub identity: Identity,
    /// Its owner references (empty for virtual nodes).
    pub owners: Vec<OwnerReference>,
    /// uids of the nodes whose owner references name this one.
    pub dependents: BTreeSet<String>,
    /// Known only from a dependent's reference, not (yet) seen by a watch.
    pub virtual_node: bool,
    /// Whether the object is being deleted.
    pub being_deleted: bool,
    /// Being deleted in the foreground (`foregroundDeletion` finalizer).
    pub deleting_dependents: bool,
    /// Being deleted with the `orphan` finalizer.
    pub orphaning: bool,
}

impl Node {
    fn virtual_for(identity: Identity) -> Self {
        Node {
            identity,
            owners: Vec::new(),
            dependents: BTreeSet::new(),
            virtual_node: true,
            being_deleted: false,
            deleting_dependents: false,
            orphaning: false,
        }
    }
}

/// Work a change causes (upstream's two queues).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    /// Check whether the object with this uid should be deleted, or (when it is being
    /// deleted in the foreground) whether its finalizer can go.
    AttemptToDelete(String),
    /// Release the dependents of the object with this uid, then remove `orphan`.
    AttemptToOrphan(String),
}

/// The graph of owners and dependents.
#[derive(Default, Debug)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

impl Graph {
    /// The node with `uid`.
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// How many nodes (observed and virtual) the graph holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The dependents of `uid` whose reference to it sets `blockOwnerDeletion`: a
    /// foreground deletion waits for these.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        let Some(node) = self.nodes.get(uid) else {
            return Vec::new();
        };
        node.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d))
            .filter(|d| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            })
            .collect()
    }

    /// The dependents of `uid`.
    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An object was added or changed.
    pub fn upsert(&mut self, obj: ObjectState) -> Vec<Work> {
        let uid = obj.identity.uid.clone();
        let mut work = Vec::new();
        let (old_owners, was_deleting_dependents, was_orphaning, observed_before) =
            match self.nodes.get_mut(&uid) {
                Some(node) => {
                    let observed_before = !node.virtual_node;
                    node.virtual_node = false;
                    node.identity = obj.identity.clone();
                    (
                        std::mem::take(&mut node.owners),
                        node.deleting_dependents,
                        node.orphaning,
                        observed_before,
                    )
                }
                None => {
                    let mut node = Node::virtual_for(obj.identity.clone());
                    node.virtual_node = false;
                    self.nodes.insert(uid.clone(), node);
                    (Vec::new(), false, false, false)
                }
            };

        // Edges: link new owners (creating virtual nodes for unseen ones, which are then
        // checked against the server), unlink removed ones.
        for owner in &obj.owners {
            if old_owners.iter().any(|o| o.uid == owner.uid) {
                continue;
            }
            let owner_node = self.nodes.entry(owner.uid.clone()).or_insert_with(|| {
                work.push(Work::AttemptToDelete(owner.uid.clone()));
                Node::virtual_for(Identity {
                    api_version: owner.api_version.clone(),
                    kind: owner.kind.clone(),
                    namespace: obj.identity.namespace.clone(),
                    name: owner.name.clone(),
                    uid: owner.uid.clone(),
                })
            });
            owner_node.dependents.insert(uid.clone());
        }
        for old in &old_owners {
            let kept = obj.owners.iter().find(|o| o.uid == old.uid);
            if kept.is_none() {
                if let Some(owner_node) = self.nodes.get_mut(&old.uid) {
                    owner_node.dependents.remove(&uid);
                }
            }
            // An owner waiting in the foreground may now be free to go: this dependent
            // no longer refers to it, or no longer blocks it.
            let unblocked = match kept {
                None => true,
                Some(k) => {
                    old.block_owner_deletion == Some(true) && k.block_owner_deletion != Some(true)
                }
            };
            if unblocked
                && self
                    .nodes
                    .get(&old.uid)
                    .is_some_and(|n| n.deleting_dependents)
            {
                work.push(Work::AttemptToDelete(old.uid.clone()));
            }
        }

        let node = self.nodes.get_mut(&uid).expect("inserted above");
        node.owners = obj.owners.clone();
        node.being_deleted = obj.being_deleted;
        node.orphaning = obj.orphaning();
        node.deleting_dependents = obj.deleting_dependents();

        // Transitions (upstream `processTransitions`).
        if node.orphaning && !(observed_before && was_orphaning) {
            work.push(Work::AttemptToOrphan(uid.clone()));
        }
        if node.deleting_dependents && !(observed_before && was_deleting_dependents) {
            let dependents: Vec<String> = node.dependents.iter().cloned().collect();
            work.extend(dependents.into_iter().map(Work::AttemptToDelete));
            work.push(Work::AttemptToDelete(uid.clone()));
        }
        // A new dependent of owners already in the graph needs no check (as upstream):
        // owners it names that the graph has not seen were queued above as virtual
        // nodes, and their absence queues their dependents.
        work
    }

    /// An object was deleted (its watch reported it, or a virtual owner was found gone):
    /// its dependents are checked, and owners waiting for it in the foreground too.
    pub fn remove(&mut self, uid: &str) -> Vec<Work> {
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        let mut work: Vec<Work> = node
            .dependents
            .iter()
            .map(|d| Work::AttemptToDelete(d.clone()))
            .collect();
        for owner in &node.owners {
            let Some(owner_node) = self.nodes.get_mut(&owner.uid) else {
                continue;
            };
            owner_node.dependents.remove(uid);
            if owner_node.deleting_dependents {
                work.push(Work::AttemptToDelete(owner.uid.clone()));
            }
            // A virtual owner nobody refers to any more is forgotten.
            if owner_node.virtual_node && owner_node.dependents.is_empty() {
                self.nodes.remove(&owner.uid);
            }
        }
        work
    }

    /// A live read found the object of `uid` gone (upstream's virtual delete event):
    /// a virtual node is removed; an observed one stays until its watch reports the
    /// deletion, but its dependents are checked now.
    pub fn absent(&mut self, uid: &str) -> Vec<Work> {
        match self.nodes.get(uid) {
            Some(node) if node.virtual_node => self.remove(uid),
            Some(node) => node
                .dependents
                .iter()
                .map(|d| Work::AttemptToDelete(d.clone()))
                .collect(),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, name: &str, uid: &str) -> Identity {
        Identity {
            api_version: if kind == "ReplicaSet" {
                "apps/v1"
            } else {
                "v1"
            }
            .into(),
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn owner_ref(kind: &str, name: &str, uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            block_owner_deletion: block.then_some(true),
            controller: Some(true),
        }
    }

    fn obj(identity: Identity, owners: Vec<OwnerReference>) -> ObjectState {
        ObjectState {
            identity,
            owners,
            being_deleted: false,
            finalizers: vec![],
        }
    }

    #[test]
    fn unseen_owner_becomes_a_virtual_node_that_is_checked() {
        let mut g = Graph::default();
        let work = g.upsert(obj(
            id("Pod", "p", "p1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", true)],
        ));
        assert_eq!(work, vec![Work::AttemptToDelete("rs1".into())]);
        let owner = g.get("rs1").unwrap();
        assert!(owner.virtual_node);
        assert_eq!(owner.identity.namespace, "default");
        assert!(owner.dependents.contains("p1"));

        // The owner's own watch event makes it observed, without new work.
        let work = g.upsert(obj(id("ReplicaSet", "rs", "rs1"), vec![]));
        assert!(work.is_empty(), "{work:?}");
        assert!(!g.get("rs1").unwrap().virtual_node);
        assert!(g.get("rs1").unwrap().dependents.contains("p1"));
    }

    #[test]
    fn deleting_an_owner_checks_its_dependents() {
        let mut g = Graph::default();
        g.upsert(obj(id("ReplicaSet", "rs", "rs1"), vec![]));
        g.upsert(obj(
            id("Pod", "a", "a1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", false)],
        ));
        g.upsert(obj(
            id("Pod", "b", "b1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", false)],
        ));
        let mut work = g.remove("rs1");
        work.sort();
        assert_eq!(
            work,
            vec![
                Work::AttemptToDelete("a1".into()),
                Work::AttemptToDelete("b1".into())
            ]
        );
        assert!(g.get("rs1").is_none());
    }

    #[test]
    fn foreground_deletion_checks_dependents_and_waits_for_blocking_ones() {
        let mut g = Graph::default();
        g.upsert(obj(id("ReplicaSet", "rs", "rs1"), vec![]));
        g.upsert(obj(
            id("Pod", "a", "a1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", true)],
        ));
        g.upsert(obj(
            id("Pod", "b", "b1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", false)],
        ));
        let mut deleting = obj(id("ReplicaSet", "rs", "rs1"), vec![]);
        deleting.being_deleted = true;
        deleting.finalizers = vec![FOREGROUND_FINALIZER.into()];
        let mut work = g.upsert(deleting.clone());
        work.sort();
        assert_eq!(
            work,
            vec![
                Work::AttemptToDelete("a1".into()),
                Work::AttemptToDelete("b1".into()),
                Work::AttemptToDelete("rs1".into()),
            ]
        );
        // A repeated event for the same state causes nothing new.
        assert!(g.upsert(deleting).is_empty());
        let blocking: Vec<_> = g
            .blocking_dependents("rs1")
            .iter()
            .map(|n| n.identity.name.clone())
            .collect();
        assert_eq!(blocking, vec!["a"]);
        // The blocking dependent going re-checks the owner.
        assert_eq!(g.remove("a1"), vec![Work::AttemptToDelete("rs1".into())]);
        assert!(g.blocking_dependents("rs1").is_empty());
    }

    #[test]
    fn dropping_a_blocking_reference_rechecks_a_waiting_owner() {
        let mut g = Graph::default();
        let mut rs = obj(id("ReplicaSet", "rs", "rs1"), vec![]);
        rs.being_deleted = true;
        rs.finalizers = vec![FOREGROUND_FINALIZER.into()];
        g.upsert(rs);
        g.upsert(obj(
            id("Pod", "a", "a1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", true)],
        ));
        let work = g.upsert(obj(
            id("Pod", "a", "a1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", false)],
        ));
        assert_eq!(work, vec![Work::AttemptToDelete("rs1".into())]);
        let work = g.upsert(obj(id("Pod", "a", "a1"), vec![]));
        assert_eq!(work, vec![Work::AttemptToDelete("rs1".into())]);
        assert!(g.dependents("rs1").is_empty());
    }

    #[test]
    fn orphan_finalizer_starts_orphaning_once() {
        let mut g = Graph::default();
        g.upsert(obj(id("ReplicaSet", "rs", "rs1"), vec![]));
        let mut rs = obj(id("ReplicaSet", "rs", "rs1"), vec![]);
        rs.being_deleted = true;
        rs.finalizers = vec![ORPHAN_FINALIZER.into()];
        assert_eq!(
            g.upsert(rs.clone()),
            vec![Work::AttemptToOrphan("rs1".into())]
        );
        assert!(g.upsert(rs).is_empty());
    }

    #[test]
    fn absent_removes_virtual_nodes_only() {
        let mut g = Graph::default();
        g.upsert(obj(
            id("Pod", "p", "p1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", false)],
        ));
        assert_eq!(g.absent("rs1"), vec![Work::AttemptToDelete("p1".into())]);
        assert!(g.get("rs1").is_none());
        assert_eq!(g.absent("p1"), vec![]);
        assert!(g.get("p1").is_some());
    }

    #[test]
    fn removing_the_last_dependent_forgets_a_virtual_owner() {
        let mut g = Graph::default();
        g.upsert(obj(
            id("Pod", "p", "p1"),
            vec![owner_ref("ReplicaSet", "rs", "rs1", false)],
        ));
        g.remove("p1");
        assert!(g.is_empty());
    }
}
