//! The remote-command protocols between kubectl (through the API server) and the kubelet,
//! and between the kubelet and the container runtime's streaming server.
//!
//! - [`websocket`]: `v5.channel.k8s.io` / `v4.channel.k8s.io` channels (exec, attach) and
//!   a byte tunnel for `SPDY/3.1+portforward.k8s.io`.
//! - [`spdy`]: SPDY/3.1 framing and sessions (port-forward; exec for SPDY clients; the
//!   kubelet's side of containerd's streaming server).
//! - [`remotecommand`]: exec/attach sessions: serve kubectl's protocol, dial the runtime's.
//! - [`portforward`]: port-forward stream pairs on both sides and the splice between them.
//! - [`upgrade`]: HTTP/1.1 upgrade requests to a streaming server (client side).

pub mod portforward;
pub mod remotecommand;
pub mod spdy;
pub mod upgrade;
pub mod websocket;
