//! `k8rs-scheduler`: assigns pods to nodes, shaped like upstream's kube-scheduler
//! (a scheduling queue, a node cache with assumed pods, a framework of filter and score
//! plugins, binding through `pods/binding`).
